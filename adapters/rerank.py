"""Re-rank candidates of an existing recommender with recgen features and a learned combiner.

A collaborative-filtering model (ALS, BPR, a two-tower retriever, a heuristic) proposes
candidates; recgen adds how well each candidate matches the user's taste in text, image and
review space; a small learned model combines both. The CF side stays what it is: this module
only needs its output.

Two input formats (helpers in :mod:`recgen.interop`)::

    from recgen.interop import candidates_from_frame, candidates_from_implicit

    # the `implicit` library: model.recommend(userids, user_items[userids], N=100)
    ids, scores = als.recommend(rows, user_items[rows], N=100, filter_already_liked_items=True)
    cands = candidates_from_implicit(user_ids, ids, scores, item_ids=item_ids)

    # any (user, item, score) frame
    cands = candidates_from_frame(df, user_col="customer", item_col="sku", score_col="cf_score")

then::

    rr = LearnedReranker("models/shop").fit(val_candidates, val_interactions)
    top10 = rr.rerank(cands, k=10)          # user_id, item_id, score, cf_rank, rerank_score, rerank_rank

The combiner is fitted on candidates of a *later* period than the one the CF model and the
recgen profiles were fitted on (a validation window), with the items the users then
interacted with as positives; see ``benchmarks/bench_rerank_movielens.py`` for the protocol
and ``adapters/examples/`` for runnable scripts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from recgen.errors import NotFittedError
from recgen.enrich import Enricher
from recgen.ids import id_strings
from recgen.interop import RANK_COL
from recgen_adapters.sklearn_transformer import RecgenFeatures

CF_FEATURES = ("cf_rank", "cf_gap", "cf_z")
MODELS = ("hgb", "logistic", "lambdarank")


def _ids(values: pd.Series) -> np.ndarray:
    """Ids as recgen stores them (``1.0`` -> ``"1"``, missing -> ``""``), like the enrichment does."""
    return np.asarray(id_strings(pd.Series(values)), dtype=object)


def _check_positives(positives: Any, user_col: str, item_col: str) -> None:
    missing = [c for c in (user_col, item_col) if c not in getattr(positives, "columns", [])]
    if missing:
        raise ValueError(f"positives must be a DataFrame with columns {[user_col, item_col]}; missing {missing}")


def _default_model(name: str, random_state: int):
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                              min_samples_leaf=50, l2_regularization=1.0, early_stopping=False,
                                              random_state=random_state)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=2000, C=1.0))])
    if name == "lambdarank":
        try:
            from lightgbm import LGBMRanker
        except ImportError as exc:
            raise ImportError("model='lambdarank' needs LightGBM: pip install lightgbm (or use model='hgb')") from exc
        return LGBMRanker(objective="lambdarank", n_estimators=200, learning_rate=0.05, num_leaves=15,
                          min_child_samples=50, random_state=random_state, verbose=-1)
    raise ValueError(f"model must be one of {MODELS} or a scikit-learn estimator; got {name!r}")


class _Reranker:
    """What every re-ranker shares: CF input features and re-ordering by :meth:`predict`."""

    user_col: str
    item_col: str
    score_col: str
    extra_features: Sequence[str] = ()

    def predict(self, candidates: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inputs(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """``user, item, score, cf_rank, cf_gap, cf_z, extras`` in a fixed order."""
        if not isinstance(candidates, pd.DataFrame):
            raise TypeError(f"candidates must be a pandas DataFrame; got {type(candidates).__name__}")
        need = [self.user_col, self.item_col, self.score_col, *self.extra_features]
        missing = [c for c in need if c not in candidates.columns]
        if missing:
            raise ValueError(f"candidates is missing column(s) {missing}; it has {list(candidates.columns)}. "
                             f"Build it with candidates_from_implicit / candidates_from_frame, or pass "
                             f"user_col=/item_col=/score_col=/extra_features= to match yours")
        if not len(candidates):
            raise ValueError("candidates is empty")
        users = pd.Series(_ids(candidates[self.user_col]), index=candidates.index)
        score = pd.to_numeric(candidates[self.score_col], errors="coerce").astype(np.float64)
        if not np.isfinite(score.to_numpy()).all():
            raise ValueError(f"column {self.score_col!r} has missing or non-finite scores: clean them first "
                             f"(candidates_from_frame drops such rows)")
        grouped = score.groupby(users.to_numpy(), sort=False)
        rank = grouped.rank(method="first", ascending=False)
        if RANK_COL in candidates.columns:
            rank = pd.to_numeric(candidates[RANK_COL], errors="coerce").fillna(rank)
        std = grouped.transform("std").fillna(0.0).to_numpy()
        z = (score - grouped.transform("mean")).to_numpy() / np.where(std > 0, std, 1.0)
        X = pd.DataFrame({self.user_col: users.to_numpy(), self.item_col: _ids(candidates[self.item_col]),
                          self.score_col: score.to_numpy(), "cf_rank": rank.to_numpy(dtype=np.float64),
                          "cf_gap": (score - grouped.transform("max")).to_numpy(), "cf_z": z})
        for c in self.extra_features:
            X[c] = pd.to_numeric(candidates[c], errors="coerce").to_numpy(dtype=np.float64)
        return X

    def rerank(self, candidates: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Candidates re-ordered per user by the combiner.

        Parameters
        ----------
        candidates : DataFrame
        k : int, optional
            Keep the top ``k`` per user.

        Returns
        -------
        pandas.DataFrame
            The candidate columns plus ``rerank_score`` and ``rerank_rank`` (1 = best),
            grouped by user (first-seen order), best first.
        """
        if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"k must be a positive int or None; got {k!r}")
        out = candidates.reset_index(drop=True).assign(rerank_score=self.predict(candidates))
        users = _ids(out[self.user_col])
        order = pd.Categorical(users, categories=pd.unique(users), ordered=True)
        out = out.iloc[np.lexsort((-out["rerank_score"].to_numpy(dtype=np.float64), order.codes))]
        out = out.reset_index(drop=True)
        out["rerank_rank"] = out.groupby(self.user_col, sort=False).cumcount().to_numpy() + 1
        if k is not None:
            out = out[out["rerank_rank"] <= k].reset_index(drop=True)
        return out


class LearnedReranker(_Reranker):
    """Combine a recommender's candidate scores with recgen features and re-rank.

    Parameters
    ----------
    enricher : str, Path or Enricher
        Saved recgen directory or loaded :class:`Enricher`, fitted on interactions up to the
        time the candidates were produced (features must not see the future).
    model : {"hgb", "logistic", "lambdarank"} or estimator, default "hgb"
        The combiner. ``"hgb"``: pointwise HistGradientBoostingClassifier (no extra
        dependency); ``"logistic"``: standardised logistic regression (interpretable
        weights); ``"lambdarank"``: LightGBM ``LGBMRanker`` optimising NDCG per user;
        or any classifier with ``predict_proba`` / ``decision_function``.
    user_col, item_col, score_col : str
        Columns of the candidate frames.
    extra_features : sequence of str
        Other numeric candidate columns to feed the combiner (e.g. item popularity).
    modalities : sequence of str, optional
        recgen similarities used (default: all of the model's).
    random_state : int, default 0

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        ``RecgenFeatures -> model``, fitted.
    feature_names_ : list of str
        Inputs of the combiner, in order.
    fit_info_ : dict
        Rows, positives and users seen in :meth:`fit`.

    Notes
    -----
    CF features given to the combiner: the raw score, ``cf_rank``, ``cf_gap`` (the score
    minus the user's best candidate score) and ``cf_z`` (the score standardised within the
    user's candidates); the last two make scores comparable across users.
    """

    def __init__(self, enricher: str | Path | Enricher, *, model: str | Any = "hgb", user_col: str = "user_id",
                 item_col: str = "item_id", score_col: str = "score", extra_features: Sequence[str] = (),
                 modalities: Sequence[str] | None = None, random_state: int = 0) -> None:
        self.enricher = enricher if isinstance(enricher, Enricher) else Enricher.load(enricher)
        if isinstance(model, str):
            _default_model(model, random_state)  # validate the name now, not at fit
        self.model = model
        self.user_col, self.item_col, self.score_col = user_col, item_col, score_col
        self.extra_features = list(extra_features)
        self.modalities = modalities
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _pipeline(self) -> Pipeline:
        est = _default_model(self.model, self.random_state) if isinstance(self.model, str) else clone(self.model)
        feats = RecgenFeatures(self.enricher, user_col=self.user_col, item_col=self.item_col,
                               modalities=self.modalities, fill_value=0.0)
        return Pipeline([("recgen", feats), ("model", est)])

    # ---------------------------------------------------------------------- API
    def fit(self, candidates: pd.DataFrame, positives: pd.DataFrame) -> "LearnedReranker":
        """Learn the combiner: a candidate is positive when ``(user, item)`` is in ``positives``.

        Parameters
        ----------
        candidates : DataFrame
            Candidates produced at time t (e.g. for the users of a validation window).
        positives : DataFrame
            ``user_col, item_col`` rows the users interacted with after t.

        Returns
        -------
        self
        """
        X = self._inputs(candidates)
        missing = [c for c in (self.user_col, self.item_col) if c not in getattr(positives, "columns", [])]
        if missing:
            raise ValueError(f"positives must be a DataFrame with columns {[self.user_col, self.item_col]}; "
                             f"missing {missing}")
        pos = set(zip(_ids(positives[self.user_col]), _ids(positives[self.item_col])))
        y = np.fromiter(((u, i) in pos for u, i in zip(X[self.user_col], X[self.item_col])), dtype=bool, count=len(X))
        if not y.any():
            raise ValueError(f"none of the {len(X)} candidate pairs is among the {len(pos)} positives: check that "
                             f"both use the same ids (as str) and that positives come from the candidates' period")
        if y.all():
            raise ValueError("every candidate is a positive: the combiner needs negatives too (pass all candidates)")
        pipe = self._pipeline()
        fit_params: dict[str, Any] = {}
        if self.model == "lambdarank":
            # LambdaMART needs rows grouped by user; users without any positive carry no signal
            has_pos = pd.Series(y).groupby(X[self.user_col].to_numpy(), sort=False).transform("any").to_numpy()
            X, y = X[has_pos].reset_index(drop=True), y[has_pos]
            order = np.argsort(pd.factorize(X[self.user_col])[0], kind="stable")
            X, y = X.iloc[order].reset_index(drop=True), y[order]
            fit_params["model__group"] = X.groupby(self.user_col, sort=False).size().to_numpy()
        pipe.fit(X, y.astype(int), **fit_params)
        self.pipeline_ = pipe
        self.feature_names_ = list(pipe.named_steps["recgen"].get_feature_names_out())
        self.fit_info_ = {"rows": int(len(X)), "positives": int(y.sum()), "users": int(X[self.user_col].nunique())}
        return self

    def use_enricher(self, enricher: str | Path | Enricher) -> "LearnedReranker":
        """Swap in a recgen model refitted on more recent history, keeping the learned combiner.

        The usual cycle: fit the combiner on a validation window, then serve with recgen
        (and the CF model) refitted on everything up to now. The new model must produce the
        same feature columns.

        Returns
        -------
        self
        """
        new = enricher if isinstance(enricher, Enricher) else Enricher.load(enricher)
        if hasattr(self, "pipeline_"):
            step = self.pipeline_.named_steps["recgen"]
            names = new.feature_names(modalities=self.modalities)
            if not step.add_flags:
                names = [c for c in names if "_sim_" in c]
            if names != step._recgen_cols:
                raise ValueError(f"the new recgen model yields features {names} but the combiner was fitted on "
                                 f"{step._recgen_cols}: refit the combiner, or fit recgen with the same modalities")
            step.enricher_ = new
            step.enricher = new
        self.enricher = new
        return self

    def predict(self, candidates: pd.DataFrame) -> np.ndarray:
        """Combiner score of each candidate row (higher is better), in row order."""
        if not hasattr(self, "pipeline_"):
            raise NotFittedError("LearnedReranker is not fitted: call fit(candidates, positives) first")
        X = self._inputs(candidates)
        model = self.pipeline_.named_steps["model"]
        if hasattr(model, "predict_proba") and self.model != "lambdarank":
            return self.pipeline_.predict_proba(X)[:, 1]
        if hasattr(model, "decision_function"):
            return np.asarray(self.pipeline_.decision_function(X), dtype=np.float64)
        return np.asarray(self.pipeline_.predict(X), dtype=np.float64)

    def feature_importance(self, candidates: pd.DataFrame, positives: pd.DataFrame, *, n_repeats: int = 3
                           ) -> pd.Series:
        """Permutation importance (drop in ROC AUC) of each combiner input on held-out rows."""
        from sklearn.inspection import permutation_importance

        if not hasattr(self, "pipeline_"):
            raise NotFittedError("LearnedReranker is not fitted: call fit(candidates, positives) first")
        X = self._inputs(candidates)
        feats = self.pipeline_.named_steps["recgen"].transform(X)
        pos = set(zip(_ids(positives[self.user_col]), _ids(positives[self.item_col])))
        y = np.array([(u, i) in pos for u, i in zip(X[self.user_col], X[self.item_col])], dtype=int)
        model = self.pipeline_.named_steps["model"]
        if not 0 < y.sum() < len(y):
            raise ValueError("feature_importance needs both positive and negative candidates")
        ranker = self.model == "lambdarank" or not hasattr(model, "predict_proba")

        def auc(est, data, target):
            from sklearn.metrics import roc_auc_score

            s = est.predict(data) if ranker and not hasattr(est, "decision_function") else (
                est.decision_function(data) if ranker else est.predict_proba(data)[:, 1])
            return roc_auc_score(target, s)

        res = permutation_importance(model, feats, y, n_repeats=n_repeats, random_state=self.random_state,
                                     scoring=auc)
        return pd.Series(res.importances_mean, index=self.feature_names_).sort_values(ascending=False)


class BlendReranker(_Reranker):
    """Re-rank by ``cf_z + weight * z(recgen similarity)``, with one weight tuned for NDCG@k.

    A one-parameter combiner for small feedback windows, where a learned model over many
    features overfits: both signals are standardised within each user's candidates and the
    weight is picked from ``weights`` by mean NDCG@k on the fitting window. ``weight = 0``
    (the CF order) is always a candidate, so the blend can only choose to keep the CF ranking
    when recgen does not help on the fitting window.

    Parameters
    ----------
    enricher : str, Path or Enricher
    modality : str, default "fused"
        The recgen similarity blended in.
    weights : sequence of float
        Candidate weights.
    k : int, default 10
        Cut-off of the NDCG used to pick the weight.
    user_col, item_col, score_col : str

    Attributes
    ----------
    weight_ : float
    scores_ : dict
        Mean NDCG@k of every weight on the fitting window.
    """

    def __init__(self, enricher: str | Path | Enricher, *, modality: str = "fused",
                 weights: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                 k: int = 10, user_col: str = "user_id", item_col: str = "item_id", score_col: str = "score") -> None:
        self.enricher = enricher if isinstance(enricher, Enricher) else Enricher.load(enricher)
        if f"recgen_sim_{modality}" not in self.enricher.feature_names():
            raise ValueError(f"modality {modality!r} is not one of the model's: {self.enricher.feature_names()}")
        if not len(weights) or any(not np.isfinite(w) or w < 0 for w in weights):
            raise ValueError(f"weights must be non-negative finite numbers; got {weights!r}")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int; got {k!r}")
        self.modality, self.weights, self.k = modality, tuple(float(w) for w in weights), int(k)
        self.user_col, self.item_col, self.score_col = user_col, item_col, score_col

    def _parts(self, candidates: pd.DataFrame) -> tuple[pd.Series, np.ndarray, np.ndarray]:
        X = self._inputs(candidates)
        users = X[self.user_col]
        sim = self.enricher.enrich(X[[self.user_col, self.item_col]], user_col=self.user_col, item_col=self.item_col,
                                   modalities=[self.modality])[f"recgen_sim_{self.modality}"].astype(np.float64)
        g = sim.groupby(users.to_numpy(), sort=False)
        std = g.transform("std").fillna(0.0).to_numpy()
        z = ((sim - g.transform("mean")).to_numpy() / np.where(std > 0, std, 1.0))
        z = np.nan_to_num(z, nan=0.0)  # unknown user/item: no evidence either way
        return users, X["cf_z"].to_numpy(), z

    def fit(self, candidates: pd.DataFrame, positives: pd.DataFrame) -> "BlendReranker":
        """Pick the weight with the best mean NDCG@k over the users with a positive."""
        from recgen.evaluation.ranking import ndcg_at_k

        users, cf, z = self._parts(candidates)
        _check_positives(positives, self.user_col, self.item_col)
        items = _ids(candidates[self.item_col])
        truth = pd.Series(_ids(positives[self.item_col])).groupby(_ids(positives[self.user_col])).agg(set)
        groups = [(u, idx) for u, idx in pd.Series(np.arange(len(users))).groupby(users.to_numpy(), sort=False)
                  .indices.items() if u in truth.index and truth[u] & set(items[idx])]
        if not groups:
            raise ValueError("no user has a positive among their candidates: check ids and the positives' period")
        self.scores_ = {}
        for w in self.weights:
            s = cf + w * z
            self.scores_[w] = float(np.mean([ndcg_at_k(items[idx[np.argsort(-s[idx], kind="stable")]], truth[u], self.k)
                                             for u, idx in groups]))
        self.weight_ = max(self.scores_, key=lambda w: (self.scores_[w], -w))  # ties: the smaller weight
        return self

    def predict(self, candidates: pd.DataFrame) -> np.ndarray:
        """Blended score of each row (higher is better)."""
        if not hasattr(self, "weight_"):
            raise NotFittedError("BlendReranker is not fitted: call fit(candidates, positives) first")
        _, cf, z = self._parts(candidates)
        return cf + self.weight_ * z

    def use_enricher(self, enricher: str | Path | Enricher) -> "BlendReranker":
        """Swap in a recgen model refitted on more recent history; the weight is kept."""
        new = enricher if isinstance(enricher, Enricher) else Enricher.load(enricher)
        if f"recgen_sim_{self.modality}" not in new.feature_names():
            raise ValueError(f"the new recgen model has no {self.modality!r} similarity ({new.feature_names()}): "
                             f"refit the blend with a modality it has")
        self.enricher = new
        return self
