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
    chunk_size: int = 262_144,
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
    chunk_size : int
        Rows processed at once (bounds the temporary (chunk, dim) arrays).

    Returns
    -------
    pandas.DataFrame
        A copy with ``{prefix}sim_{modality}`` (float32 cosine similarity between the
        user's taste vector and the item's vector; NaN when the user or item is unknown
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
    bad = [m for m in modalities if m not in items.vectors]
    if bad:
        raise ValueError(f"modalities {bad} are unknown; choose from {sorted(items.vectors)}")
    out = candidates.copy()
    clash = [c for c in feature_columns(prefix, modalities) if c in out.columns]
    if clash:
        log.warning("enrich: overwriting existing columns %s", clash)
    n = len(out)
    users = out[user_col]
    items_col = out[item_col]
    u_rows = profiles.rows(id_strings(users))
    i_rows = pd.Index(items.ids).get_indexer(id_strings(items_col))
    known_u, known_i = u_rows >= 0, i_rows >= 0
    both = known_u & known_i
    for m in modalities:
        sims = np.full(n, np.nan, dtype=np.float32)
        uvec, uhas = profiles.vectors_[m], profiles.present_[m]
        ivec, ihas = items.vectors[m], items.present[m]
        ok = both.copy()
        ok[both] &= uhas[u_rows[both]] & ihas[i_rows[both]]
        idx = np.flatnonzero(ok)
        for s in range(0, len(idx), chunk_size):
            sel = idx[s:s + chunk_size]
            sims[sel] = np.einsum("ij,ij->i", uvec[u_rows[sel]], ivec[i_rows[sel]])
        out[f"{prefix}sim_{m}"] = sims
    out[f"{prefix}known_user"] = known_u
    out[f"{prefix}known_item"] = known_i
    return out


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
    return pd.Index(values.astype("string").fillna("").astype(object), dtype=object)
