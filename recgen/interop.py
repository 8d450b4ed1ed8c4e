"""Interop with the recommenders recgen sits next to: their inputs and outputs as frames.

recgen does not replace a collaborative-filtering model; it reads what one produces.
These helpers turn the ``implicit`` library's inputs and outputs (and any generic
``(user, item, score)`` frame) into recgen's candidate frames, with ids normalized as the
catalog stores them. The evaluation harness uses them for its CF variants and the
re-rankers in ``recgen_adapters.rerank`` for their inputs.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from recgen.ids import id_strings

__all__ = ["IMPLICIT_MODELS", "RANK_COL", "candidates_from_frame", "candidates_from_implicit", "implicit_candidates",
           "implicit_model", "user_item_matrix"]

#: Column holding the CF model's rank (1 = best) in a candidate frame.
RANK_COL = "cf_rank"


def user_item_matrix(interactions: pd.DataFrame, items: Sequence[Any], *, user_col: str = "user_id",
                     item_col: str = "item_id") -> tuple[Any, dict[Any, int]]:
    """The binary user x item CSR matrix implicit's models train on.

    Parameters
    ----------
    interactions : DataFrame
        One row per (user, item) event; repeated events count once.
    items : sequence
        Column order; events on items not listed are dropped.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, float32, shape (n_users, len(items))
    user_rows : dict
        User id -> row, users in order of first appearance.
    """
    import scipy.sparse as sp

    user_rows = {u: r for r, u in enumerate(pd.unique(interactions[user_col]))}
    item_cols = {i: c for c, i in enumerate(items)}
    h = interactions[interactions[item_col].isin(item_cols)]
    ui = sp.csr_matrix((np.ones(len(h), np.float32),
                        (h[user_col].map(user_rows).to_numpy(), h[item_col].map(item_cols).to_numpy())),
                       shape=(len(user_rows), len(item_cols)))
    ui.data[:] = 1.0
    return ui, user_rows


def candidates_from_implicit(user_ids: Sequence[Any], ids: np.ndarray, scores: np.ndarray, *,
                             item_ids: Sequence[Any], user_col: str = "user_id", item_col: str = "item_id",
                             score_col: str = "score") -> pd.DataFrame:
    """Turn ``implicit``'s ``recommend`` output into a candidate frame.

    Parameters
    ----------
    user_ids : sequence
        External user id of each row of ``ids`` (the users you passed as ``userid``, mapped
        back from implicit's row numbers).
    ids : ndarray of int, shape (n_users, N) or (N,)
        Item row numbers as returned by ``model.recommend`` (``-1`` padding is dropped).
    scores : ndarray of float, same shape
        The model's scores (non-finite entries are dropped).
    item_ids : sequence
        External item id of each item row number (the columns of ``user_items``).
    user_col, item_col, score_col : str
        Names of the output columns.

    Returns
    -------
    pandas.DataFrame
        ``user_col, item_col, score_col, cf_rank`` (1 = best), ids as str, grouped by user
        in the order of ``user_ids``, best first.
    """
    ids = np.asarray(ids)
    scores = np.asarray(scores, dtype=np.float64)
    if ids.ndim == 1:
        ids, scores = ids[None, :], scores[None, :]
    if ids.ndim != 2 or ids.shape != scores.shape:
        raise ValueError(f"ids and scores must have the same (n_users, N) shape; got {ids.shape} and {scores.shape}")
    users = np.asarray(_ids(pd.Series(list(user_ids))), dtype=object)
    if len(users) != ids.shape[0]:
        raise ValueError(f"user_ids has {len(users)} ids but ids has {ids.shape[0]} rows: pass one user id per row")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be implicit's integer item row numbers; got dtype {ids.dtype}")
    catalog = np.asarray(_ids(pd.Series(list(item_ids))), dtype=object)
    keep = (ids >= 0) & np.isfinite(scores)
    if (ids[keep] >= len(catalog)).any():
        raise ValueError(f"ids contains item row {int(ids[keep].max())} but item_ids has only {len(catalog)} ids: "
                         f"pass the ids of every column of the user_items matrix the model was fitted on")
    rows, cols = np.nonzero(keep)
    out = pd.DataFrame({user_col: users[rows], item_col: catalog[ids[rows, cols]], score_col: scores[rows, cols]})
    return _with_rank(out, user_col, score_col)


def candidates_from_frame(frame: pd.DataFrame, *, user_col: str = "user_id", item_col: str = "item_id",
                          score_col: str = "score", k: int | None = None) -> pd.DataFrame:
    """Normalise a generic ``(user, item, score)`` frame into a candidate frame.

    Rows with a missing id or a non-finite score are dropped; a duplicated (user, item)
    keeps its best score; ids become str; ``cf_rank`` (1 = best) is added; other columns are
    kept (they can feed the combiner through ``extra_features=``).

    Parameters
    ----------
    frame : pandas.DataFrame
    user_col, item_col, score_col : str
    k : int, optional
        Keep the best ``k`` candidates per user.

    Returns
    -------
    pandas.DataFrame
        Grouped by user (first-seen order), best first, fresh index.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in (user_col, item_col, score_col) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing column(s) {missing}; it has {list(frame.columns)}. "
                         f"Pass user_col=/item_col=/score_col= to name yours")
    if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive int or None; got {k!r}")
    score = pd.to_numeric(frame[score_col], errors="coerce")
    ok = frame[user_col].notna() & frame[item_col].notna() & np.isfinite(score.to_numpy(dtype=np.float64, na_value=np.nan))
    out = frame.loc[ok].copy()
    out[user_col] = _ids(out[user_col])
    out[item_col] = _ids(out[item_col])
    out[score_col] = score[ok].astype(np.float64)
    out = out.sort_values(score_col, ascending=False, kind="stable").drop_duplicates([user_col, item_col])
    out = _with_rank(out, user_col, score_col)
    if k is not None:
        out = out[out[RANK_COL] <= k].reset_index(drop=True)
    return out


def _ids(values: pd.Series) -> np.ndarray:
    """Ids as recgen stores them (``1.0`` -> ``"1"``, missing -> ``""``), like the enrichment does."""
    return np.asarray(id_strings(pd.Series(values)), dtype=object)


def _with_rank(df: pd.DataFrame, user_col: str, score_col: str) -> pd.DataFrame:
    """Group rows by user (first-seen order), best score first, and add ``cf_rank``."""
    order = pd.Categorical(df[user_col], categories=pd.unique(df[user_col]), ordered=True)
    df = df.iloc[np.lexsort((-df[score_col].to_numpy(dtype=np.float64), order.codes))].reset_index(drop=True)
    df[RANK_COL] = df.groupby(user_col, sort=False).cumcount().to_numpy() + 1
    return df


IMPLICIT_MODELS = ("als", "bpr")


def implicit_model(kind: str, *, seed: int = 0, factors: int = 64, iterations: int | None = None,
                   regularization: float = 0.05, **options: Any):
    """An unfitted ``implicit`` ALS or BPR model with recgen's defaults.

    Parameters
    ----------
    kind : {"als", "bpr"}
    seed : int
        ``random_state``; BPR runs single-threaded, the only reproducible way.
    factors, iterations, regularization
        The model's hyper-parameters (iterations default: 15 for ALS, 100 for BPR).
    **options
        Passed to the model's constructor (e.g. ``alpha`` for ALS).

    Raises
    ------
    MissingExtraError
        ``implicit`` is not installed (the message has the pip line).
    """
    from recgen.errors import missing_extra

    if kind not in IMPLICIT_MODELS:
        raise ValueError(f"kind must be one of {IMPLICIT_MODELS}; got {kind!r}")
    try:
        import implicit
    except ImportError as exc:
        raise missing_extra("implicit", "pip install 'recgen[cf]'", f"{kind.upper()} candidates") from exc
    if kind == "bpr":
        return implicit.cpu.bpr.BayesianPersonalizedRanking(
            factors=factors, iterations=100 if iterations is None else iterations, random_state=seed,
            num_threads=1, **options)  # multithreaded BPR is not reproducible
    return implicit.cpu.als.AlternatingLeastSquares(
        factors=factors, regularization=regularization, iterations=15 if iterations is None else iterations,
        random_state=seed, **options)


def implicit_candidates(model: Any, interactions: pd.DataFrame, users: Sequence[Any], items: Sequence[Any], *,
                        n: int, weighting: Any = None) -> pd.DataFrame:
    """Fit an ``implicit`` model on ``interactions`` and return its top-``n`` unseen items per user.

    Parameters
    ----------
    model
        An unfitted implicit model (e.g. :func:`implicit_model`).
    interactions : DataFrame
        ``user_id``, ``item_id`` events (ids as str).
    users : sequence
        Users to rank for; those without any interaction are skipped.
    items : sequence
        The catalog's item ids (the matrix columns).
    n : int
        Candidates per user.
    weighting : callable, optional
        Applied to the binary CSR matrix before fitting (e.g. implicit's ``bm25_weight``).

    Returns
    -------
    pandas.DataFrame
        See :func:`candidates_from_implicit`; empty (with its columns) when no user is known.
    """
    ui, u_index = user_item_matrix(interactions, items)
    if weighting is not None:
        ui = weighting(ui).tocsr().astype(np.float32)
    model.fit(ui, show_progress=False)
    known = [u for u in users if u in u_index]
    if not known:
        return pd.DataFrame(columns=["user_id", "item_id", "score", RANK_COL])
    rows = np.array([u_index[u] for u in known], dtype=np.int64)
    ids, scores = model.recommend(rows, ui[rows], N=n, filter_already_liked_items=True)
    return candidates_from_implicit(known, ids, scores, item_ids=items)
