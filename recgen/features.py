"""Similarity features for candidates produced by any recommender.

One vectorized function, :func:`enrich_candidates`, behind :class:`recgen.enrich.Enricher`
and so behind every adapter (Python API, sklearn, HTTP, batch, Ray): a feature has the same
value wherever it is computed.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from recgen.encoders.space import ItemVectors
from recgen.ids import id_strings
from recgen.modalities import VECTOR_MODALITIES
from recgen.profiles import UserProfiles

log = logging.getLogger(__name__)
# pandas >= 3 copies on write (and deprecates copy=); before that, ask for a copy so the result
# never shares memory with the caller's frame
_CONCAT_COPY = {} if int(pd.__version__.split(".")[0]) >= 3 else {"copy": True}

#: Similarities :func:`enrich_candidates` adds by default: one per vector modality.
FEATURE_MODALITIES = VECTOR_MODALITIES


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
        Which similarities to add (subset of :data:`recgen.modalities.VECTOR_MODALITIES`).
    block_size : int
        Distinct pairs computed at once (bounds the temporary (block, dim) arrays, keeps them in cache).

    Returns
    -------
    pandas.DataFrame
        A copy with ``{prefix}sim_{modality}`` (cosine similarity between the user's
        taste vector and the item's vector, float32; NaN when the user or item is unknown
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
    _check_id_columns_unique(candidates, (user_col, item_col))
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
    # Each distinct (user, item) pair is computed once (candidate sets repeat pairs, and small
    # catalogs repeat them a lot), always with the same float32 row kernel: einsum reduces one
    # contiguous row at a time, so a pair's value does not depend on the rest of the batch and
    # adapters that batch differently (HTTP, batch job, Ray) get bit-identical features.
    both_rows = np.flatnonzero(both)
    n_item_rows = max(len(items.ids), 1)
    key = u_rows[both_rows].astype(np.int64) * n_item_rows + i_rows[both_rows]
    uniq, inverse = np.unique(key, return_inverse=True)
    pu, pi = uniq // n_item_rows, uniq % n_item_rows
    for m in modalities:
        sims = np.full(n, np.nan, dtype=np.float32)
        uvec, uhas = profiles.vectors_[m], profiles.present_[m]
        ivec, ihas = items.vectors[m], items.present[m]
        vals = np.full(len(uniq), np.nan, dtype=np.float32)
        ok = np.flatnonzero(uhas[pu] & ihas[pi])
        for s in range(0, len(ok), block_size):   # blocks that stay in cache
            sel = ok[s:s + block_size]
            vals[sel] = np.einsum("ij,ij->i", np.take(uvec, pu[sel], axis=0), np.take(ivec, pi[sel], axis=0))
        sims[both_rows] = vals[inverse.reshape(-1)]
        new[f"{prefix}sim_{m}"] = sims
    new[f"{prefix}known_user"] = known_u
    new[f"{prefix}known_item"] = known_i
    # one concat instead of a setitem per column (pandas' per-column cost dominates small batches)
    kept = candidates.drop(columns=clash) if clash else candidates
    out = pd.concat([kept, pd.DataFrame(new, index=candidates.index)], axis=1, **_CONCAT_COPY)
    if clash:  # overwritten columns stay where they were
        out = out[list(candidates.columns) + [c for c in new if c not in candidates.columns]]
    return out


def _check_id_columns_unique(candidates: pd.DataFrame, id_cols: Sequence[str]) -> None:
    """An id column name that occurs twice makes ``frame[col]`` a DataFrame: refuse it by name."""
    dup = [c for c in dict.fromkeys(id_cols) if int((candidates.columns == c).sum()) > 1]
    if dup:
        raise ValueError(f"candidates has more than one column named {dup}; which one holds the ids is "
                         f"ambiguous: rename or drop the extra column(s) first")
