"""scikit-learn transformer adding recgen features to candidate rows before any ranker.

>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> from recgen_adapters import RecgenFeatures
>>> ranker = make_pipeline(RecgenFeatures("recgen-demo"), HistGradientBoostingClassifier())
>>> ranker.fit(candidates[["user_id", "item_id", "cf_score"]], clicked)
>>> scores = ranker.predict_proba(new_candidates[["user_id", "item_id", "cf_score"]])[:, 1]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from recgen.enrich import Enricher

_ENRICH_USER, _ENRICH_ITEM = "__recgen_user", "__recgen_item"


class RecgenFeatures(TransformerMixin, BaseEstimator):
    """Turn ``(user, item, other features...)`` rows into ``(other features..., recgen features)``.

    Parameters
    ----------
    enricher : str, Path or Enricher
        A saved recgen directory (loaded at :meth:`fit`) or a loaded :class:`Enricher`.
    user_col, item_col : str or int, default "user_id", "item_id"
        Id columns: names for DataFrames, positions for arrays. They are consumed (not
        passed on to the ranker).
    modalities : sequence of str, optional
        Similarities to add (default: every modality of the model).
    add_flags : bool, default True
        Add ``known_user`` / ``known_item`` as 0/1 columns.
    passthrough : bool, default True
        Keep the other input columns (e.g. the CF score) in front of the recgen features.
        They must be numeric for most rankers.
    fill_value : float or None, default 0.0
        Value for similarities that cannot be computed (unknown user/item, missing
        modality); cosine 0 means "no evidence" and the flags tell the ranker why. ``None``
        keeps NaN (HistGradientBoosting and LightGBM handle it natively; LogisticRegression
        does not).

    Attributes
    ----------
    enricher_ : Enricher
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    passthrough_columns_ : list
        Input columns (names or positions) passed through.
    feature_names_out_ : ndarray of str

    Notes
    -----
    ``fit`` learns nothing from the rows (the recgen model is fitted separately); it loads
    the model and records the input layout, so the transformer is safe inside
    cross-validation. Pickling the fitted transformer stores the model directory, not the
    model (it is reloaded, checksums verified).

    Passes every check of ``sklearn.utils.estimator_checks.parametrize_with_checks`` with no
    expected failures (``tests/test_adapters_core.py``): ids of any type are valid input, so
    the random arrays of the checks exercise the real code path (as unknown ids). The one
    skip is scikit-learn's own array-API check, which runs only with ``SCIPY_ARRAY_API=1``;
    ids are host-side strings, so array-API namespaces do not apply.
    """

    def __init__(self, enricher: str | Path | Enricher | None = None, *, user_col: str | int = "user_id",
                 item_col: str | int = "item_id", modalities: Sequence[str] | None = None, add_flags: bool = True,
                 passthrough: bool = True, fill_value: float | None = 0.0) -> None:
        self.enricher = enricher
        self.user_col = user_col
        self.item_col = item_col
        self.modalities = modalities
        self.add_flags = add_flags
        self.passthrough = passthrough
        self.fill_value = fill_value

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True   # NaN ids are "unknown"; NaN pass-through features are the ranker's business
        tags.input_tags.string = True      # ids are usually strings
        tags.requires_fit = True
        return tags

    # ------------------------------------------------------------------ helpers
    def _layout(self, X: pd.DataFrame, is_frame: bool) -> tuple[Any, Any]:
        """(user key, item key) for this input: column labels for frames, positions for arrays."""
        if is_frame:
            cols = list(X.columns)
            for name, key in (("user_col", self.user_col), ("item_col", self.item_col)):
                if key not in cols:
                    if isinstance(key, int) and 0 <= key < len(cols):
                        continue
                    raise ValueError(f"{name}={key!r} is not a column of X; its columns are {cols}. "
                                     f"Pass {name}= the name (or position) of the id column")
            u = self.user_col if self.user_col in cols else cols[self.user_col]
            i = self.item_col if self.item_col in cols else cols[self.item_col]
            if u == i:
                raise ValueError(f"user_col and item_col both point to column {u!r}")
            return u, i
        n = X.shape[1]
        if n < 2:
            raise ValueError(f"X has {n} feature(s) but RecgenFeatures needs at least 2 columns "
                             f"(user id and item id); n_features = {n}")
        keys = []
        for name, key in (("user_col", self.user_col), ("item_col", self.item_col)):
            if isinstance(key, (int, np.integer)) and -n <= key < n:
                keys.append(int(key) % n)
            elif name == "user_col" and key == "user_id":
                keys.append(0)       # defaults map to the first two columns of an array
            elif name == "item_col" and key == "item_id":
                keys.append(1)
            else:
                raise ValueError(f"{name}={key!r} cannot address a column of a {n}-column array; pass a position")
        if keys[0] == keys[1]:
            raise ValueError(f"user_col and item_col both point to column {keys[0]}")
        return keys[0], keys[1]

    def _validate(self, X, *, reset: bool) -> pd.DataFrame:
        """Check X (sklearn's rules for arrays; DataFrames are kept) and the feature count/names."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            if not len(X):
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            return X
        # dtype=None keeps string ids; NaN ids are "unknown"; sparse input makes no sense for ids
        arr = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False, accept_sparse=False,
                            ensure_min_features=2 if reset else 1)  # after fit, the count check speaks
        return pd.DataFrame(arr)

    def _load_enricher(self) -> Enricher:
        if isinstance(self.enricher, Enricher):
            return self.enricher
        if isinstance(self.enricher, (str, Path)):
            return Enricher.load(self.enricher)
        raise ValueError(f"enricher must be a saved recgen directory or an Enricher; got {self.enricher!r}. "
                         f"Fit and save a model first (`recgen index DIR` or Recgen.save)")

    # ---------------------------------------------------------------------- API
    def fit(self, X, y=None):
        """Load the model and record the input layout. ``y`` is ignored.

        Returns
        -------
        self
        """
        frame = self._validate(X, reset=True)
        u, i = self._layout(frame, isinstance(X, pd.DataFrame))
        self.enricher_ = self._load_enricher()
        self.passthrough_columns_ = [c for c in frame.columns if c not in (u, i)] if self.passthrough else []
        names = [str(c) if isinstance(X, pd.DataFrame) else f"x{c}" for c in self.passthrough_columns_]
        recgen_cols = self.enricher_.feature_names(modalities=self.modalities)
        if not self.add_flags:
            recgen_cols = [c for c in recgen_cols if "_sim_" in c]
        self._recgen_cols = recgen_cols
        self.feature_names_out_ = np.asarray(names + recgen_cols, dtype=object)
        return self

    def transform(self, X):
        """Return ``(n_rows, n_passthrough + n_recgen)`` float64 features (a DataFrame under ``set_output``)."""
        check_is_fitted(self, "enricher_")
        frame = self._validate(X, reset=False)
        u, i = self._layout(frame, isinstance(X, pd.DataFrame))
        ids = pd.DataFrame({_ENRICH_USER: frame[u].to_numpy(), _ENRICH_ITEM: frame[i].to_numpy()})
        enriched = self.enricher_.enrich(ids, user_col=_ENRICH_USER, item_col=_ENRICH_ITEM,
                                         modalities=self.modalities)
        feats = enriched[self._recgen_cols].to_numpy(dtype=np.float64)
        if self.fill_value is not None:
            feats = np.where(np.isnan(feats), float(self.fill_value), feats)
        if self.passthrough_columns_:
            try:
                rest = frame[self.passthrough_columns_].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"pass-through columns {self.passthrough_columns_} must be numeric for the ranker "
                                 f"({exc}); drop them, encode them, or use passthrough=False") from exc
            feats = np.hstack([rest, feats])
        return feats

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns (pass-through columns, then recgen features)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()
