"""Similarity features for candidates produced by any recommender.

One vectorized function, used by every adapter (Python API, sklearn, HTTP, batch, Ray),
so a feature has the same value wherever it is computed.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from recgen.encoders.space import ItemVectors
from recgen.profiles import UserProfiles

log = logging.getLogger(__name__)

FEATURE_MODALITIES = ("fused", "text", "image", "review")
_MAX_MATRIX_CELLS = 16_000_000  # 128 MB of float64 at most for the distinct users x items table


def feature_columns(prefix: str = "recgen_", modalities: Sequence[str] = FEATURE_MODALITIES) -> list[str]:
    """Names of the columns :func:`enrich_candidates` adds, in order."""
    return [f"{prefix}sim_{m}" for m in modalities] + [f"{prefix}known_user", f"{prefix}known_item"]


def enrich_candidates(
    candidates: pd.DataFrame,
    *,
    items: ItemVectors,
    profiles: UserProfiles,
    user_col: str = "user_id",
    item_col: str = "item_id",
    prefix: str = "recgen_",
    modalities: Sequence[str] = FEATURE_MODALITIES,
    block_size: int = 2048,
) -> pd.DataFrame:
    """Add per-modality user-item similarity features to a candidate frame.

    Parameters
    ----------
    candidates : pandas.DataFrame
        One row per (user, item) candidate, e.g. ``user_id, item_id, score``; other
        columns are kept as they are, row order and index too.
    items : ItemVectors
        Item vectors of the shared space.
    profiles : UserProfiles
        Fitted user profiles in the same space.
    user_col, item_col : str
        Names of the id columns.
    prefix : str
        Prefix of the added columns.
    modalities : sequence of str
        Which similarities to add (subset of ``"fused", "text", "image", "review"``).
    block_size : int
        Rows gathered at once on the per-row path (bounds temporary arrays, keeps them in cache).

    Returns
    -------
    pandas.DataFrame
        A copy with ``{prefix}sim_{modality}`` (cosine similarity between the user's
        taste vector and the item's vector, accumulated in float64 and stored as float32; NaN when the user or item is unknown
        or the item lacks that modality) and ``{prefix}known_user`` /
        ``{prefix}known_item`` (bool) columns. Unknown ids never raise.
    """
    if not isinstance(candidates, pd.DataFrame):
        raise TypeError(f"candidates must be a pandas DataFrame; got {type(candidates).__name__}")
    missing = [c for c in (user_col, item_col) if c not in candidates.columns]
    if missing:
        raise ValueError(
            f"candidates is missing column(s) {missing}; it has {list(candidates.columns)}. "
            f"Pass user_col=/item_col= if your id columns are named differently"
        )
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive int; got {block_size!r}")
    bad = [m for m in modalities if m not in items.vectors]
    if bad:
        raise ValueError(f"modalities {bad} are unknown; choose from {sorted(items.vectors)}")
    clash = [c for c in feature_columns(prefix, modalities) if c in candidates.columns]
    if clash:
        log.warning("enrich: overwriting existing columns %s", clash)
    n = len(candidates)
    users = candidates[user_col]
    items_col = candidates[item_col]
    new: dict[str, np.ndarray] = {}
    u_rows = profiles.rows(id_strings(users))
    i_rows = items.rows(id_strings(items_col))
    known_u, known_i = u_rows >= 0, i_rows >= 0
    both = known_u & known_i
    # Few distinct users x items (candidates grouped per user, small catalogs): one BLAS
    # product of the distinct rows beats gathering a (rows, dim) array per side. Both paths
    # accumulate in float64 and round to float32, so a pair's value does not depend on which
    # path (i.e. on the rest of the batch) computed it: adapters that batch differently agree.
    pair_u, pair_i = u_rows[both], i_rows[both]
    uu, u_inv = np.unique(pair_u, return_inverse=True)
    ii, i_inv = np.unique(pair_i, return_inverse=True)
    use_matrix = _use_matrix(len(pair_u), len(uu), len(ii))
    for m in modalities:
        sims = np.full(n, np.nan, dtype=np.float32)
        uvec, uhas = profiles.vectors_[m], profiles.present_[m]
        ivec, ihas = items.vectors[m], items.present[m]
        ok = uhas[pair_u] & ihas[pair_i]              # among the rows where both ids are known
        rows = np.flatnonzero(both)[ok]
        if use_matrix:
            table = uvec[uu].astype(np.float64) @ ivec[ii].astype(np.float64).T
            sims[rows] = table[u_inv[ok], i_inv[ok]]
        else:
            su, si = pair_u[ok], pair_i[ok]
            for s in range(0, len(rows), block_size):   # blocks that stay in cache
                a = np.take(uvec, su[s:s + block_size], axis=0)
                b = np.take(ivec, si[s:s + block_size], axis=0)
                sims[rows[s:s + block_size]] = np.einsum("ij,ij->i", a, b, dtype=np.float64)
        new[f"{prefix}sim_{m}"] = sims
    new[f"{prefix}known_user"] = known_u
    new[f"{prefix}known_item"] = known_i
    # one concat instead of a setitem per column (pandas' per-column cost dominates small batches)
    kept = candidates.drop(columns=clash) if clash else candidates
    return pd.concat([kept, pd.DataFrame(new, index=candidates.index)], axis=1, copy=True)


def _use_matrix(n_pairs: int, n_users: int, n_items: int) -> bool:
    """Whether the distinct users x items product is cheaper than gathering ``n_pairs`` rows."""
    cells = n_users * n_items
    return n_pairs > 0 and cells <= max(4 * n_pairs, 4096) and cells <= _MAX_MATRIX_CELLS


def id_strings(values: pd.Series) -> pd.Index:
    """Ids as the catalog stores them, vectorized: ints (also 42.0 in float columns) as "42", missing as ""."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return pd.Index(values.astype(str), dtype=object)
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & np.isfinite(values) & (values == values.round())
        out = values.astype(str)
        out[whole] = values[whole].astype("int64").astype(str)
        out[values.isna()] = ""
        return pd.Index(out, dtype=object)
    if isinstance(values.dtype, pd.StringDtype):  # already text: one conversion, missing -> ""
        return pd.Index(values.to_numpy(dtype=object, na_value=""), dtype=object)
    return pd.Index(values.astype("string").fillna("").astype(object), dtype=object)
