"""User taste vectors built from interaction histories in the shared item space."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_save_npy, load_npy
from recgen.encoders.base import l2_normalize
from recgen.encoders.space import ItemVectors
from recgen.errors import NotFittedError, UnknownIdError
from recgen.ids import id_strings

log = logging.getLogger(__name__)


@dataclass
class ProfileConfig:
    """How histories become taste vectors.

    Attributes
    ----------
    half_life_days : float or None
        Recency weighting: an interaction ``half_life_days`` older than the user's latest
        one counts half. ``None`` weighs all interactions equally.
    rating_floor : float
        Weight of the lowest rating relative to the highest (ratings are mapped linearly
        onto ``[rating_floor, 1]``); interactions without a rating weigh 1.
    n_interests : int
        1 = one taste vector per user. Above 1, histories are also clustered (k-means in
        the shared space) into up to this many interest vectors, used by
        ``Recgen.recommend`` to cover several tastes.
    min_history_per_interest : int
        A user gets at most ``len(history) // min_history_per_interest`` interests.
    like_threshold : float
        Where on the catalog's rating scale (0 = its lowest rating, 1 = its highest) a rating
        starts to mean "liked"; 0.75 is 4 and up on a 1-5 scale. An item the user rated below
        it is never the history item a blurb names or a preview shows beside the
        recommendation ("You rated ..." after a one-star rating says nothing in favour of a
        film). Unrated interactions (a purchase, a view) count as liked. The taste vectors
        still weigh every interaction (``rating_floor``).
    """

    half_life_days: float | None = 60.0
    rating_floor: float = 0.1
    n_interests: int = 1
    min_history_per_interest: int = 5
    like_threshold: float = 0.75

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0 or None; got {self.half_life_days!r}")
        if not 0 <= self.rating_floor <= 1:
            raise ValueError(f"rating_floor must be in [0, 1]; got {self.rating_floor!r}")
        if self.n_interests < 1:
            raise ValueError(f"n_interests must be >= 1; got {self.n_interests!r}")
        if not 0 <= self.like_threshold <= 1:
            raise ValueError(f"like_threshold must be in [0, 1] (a share of the rating scale); "
                             f"got {self.like_threshold!r}")


def disliked(ratings: object, like_threshold: float) -> np.ndarray:
    """Which interactions were rated below ``like_threshold`` of the rating scale, as a bool array.

    The scale runs from the lowest to the highest finite rating given (as for the taste
    weights); a missing or non-numeric rating is not a dislike, nor is any rating when all
    ratings are equal.

    >>> disliked([1, 5, 4, None, 3], 0.75).tolist()
    [True, False, False, False, True]
    """
    r = pd.to_numeric(pd.Series(ratings), errors="coerce").to_numpy(dtype=float)
    fin = np.isfinite(r)
    if not fin.any():
        return np.zeros(len(r), dtype=bool)
    lo, hi = float(np.min(r[fin])), float(np.max(r[fin]))
    if hi <= lo:
        return np.zeros(len(r), dtype=bool)
    return fin & ((r - lo) / (hi - lo) < like_threshold - 1e-9)


class UserProfiles:
    """Per-user taste vectors (one per modality, plus optional multi-interest vectors).

    Fitted attributes end in ``_``: ``user_ids_``, ``vectors_`` (modality -> (n_users, dim)),
    ``present_`` (modality -> bool per user), ``seen_`` (user row -> item ids seen),
    ``interests_`` (user row -> (m, dim) interest vectors).
    """

    def __init__(self, config: ProfileConfig | None = None) -> None:
        self.config = config or ProfileConfig()

    def fit(self, interactions: pd.DataFrame, items: ItemVectors) -> "UserProfiles":
        """Build profiles from ``interactions`` (user_id, item_id, timestamp[, rating]).

        Interactions with items missing from ``items`` are ignored for the vectors (and
        counted in ``n_unknown_items_``) but still count as seen.
        """
        missing = {"user_id", "item_id"} - set(interactions.columns)
        if missing:
            raise ValueError(f"interactions is missing columns {sorted(missing)}; has {list(interactions.columns)}")
        df = interactions.reset_index(drop=True)
        users = pd.Series(id_strings(df["user_id"]))
        user_codes, user_ids = pd.factorize(users, sort=True)
        self.user_ids_ = np.asarray(user_ids, dtype=object)
        self._row_of = pd.Index(self.user_ids_)
        item_rows = pd.Index(items.ids).get_indexer(id_strings(df["item_id"]))
        known = item_rows >= 0
        self.n_unknown_items_ = int((~known).sum())
        w = self._weights(df, user_codes)
        w = np.where(known, w, 0.0).astype(np.float32)
        n_users = len(self.user_ids_)
        self.vectors_, self.present_ = {}, {}
        for m, mat in items.vectors.items():
            has = items.present[m][np.where(known, item_rows, 0)] & known
            acc = np.zeros((n_users, mat.shape[1]), dtype=np.float32)
            rows = np.flatnonzero(has)
            np.add.at(acc, user_codes[rows], mat[item_rows[rows]] * w[rows, None])
            present = np.linalg.norm(acc, axis=1) > 0
            acc[present] = l2_normalize(acc[present])
            self.vectors_[m], self.present_[m] = acc, present
        # seen items as CSR over users (sorted by user code)
        order = np.argsort(user_codes, kind="stable")
        self._seen_items = np.asarray(id_strings(df["item_id"]), dtype=object)[order]
        self._seen_disliked = (disliked(df["rating"], self.config.like_threshold) if "rating" in df.columns
                               else np.zeros(len(df), dtype=bool))[order]
        self._seen_ptr = np.concatenate([[0], np.cumsum(np.bincount(user_codes, minlength=n_users))])
        self.interests_ = {}
        if self.config.n_interests > 1:
            self._fit_interests(user_codes, item_rows, known, w, items)
        return self

    def _weights(self, df: pd.DataFrame, user_codes: np.ndarray) -> np.ndarray:
        w = np.ones(len(df), dtype=np.float64)
        c = self.config
        if c.half_life_days is not None and "timestamp" in df.columns:
            ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=float)
            ts = np.where(np.isfinite(ts), ts, np.nan)
            latest = pd.Series(ts).groupby(user_codes).transform("max").to_numpy()
            age_days = np.nan_to_num((latest - ts) / 86400.0, nan=0.0)
            w *= 0.5 ** (age_days / c.half_life_days)
        if "rating" in df.columns:
            r = pd.to_numeric(df["rating"], errors="coerce").to_numpy(dtype=float)
            fin = np.isfinite(r)
            if fin.any():
                lo, hi = np.min(r[fin]), np.max(r[fin])
                scaled = (r - lo) / (hi - lo) if hi > lo else np.ones_like(r)
                w *= np.where(fin, c.rating_floor + (1 - c.rating_floor) * scaled, 1.0)
        return w

    def _fit_interests(self, user_codes, item_rows, known, w, items: ItemVectors) -> None:
        from sklearn.cluster import KMeans

        c = self.config
        fused = items.vectors["fused"]
        for u in range(len(self.user_ids_)):
            sel = np.flatnonzero((user_codes == u) & known)
            k = min(c.n_interests, len(sel) // c.min_history_per_interest)
            if k < 2:
                continue
            x = fused[item_rows[sel]]
            km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(x, sample_weight=w[sel])
            self.interests_[u] = l2_normalize(km.cluster_centers_)

    # -------------------------------------------------------------------- access
    def _check(self) -> None:
        if not hasattr(self, "user_ids_"):
            raise NotFittedError("UserProfiles is not fitted: call fit(interactions, item_vectors) first")

    def __len__(self) -> int:
        return len(getattr(self, "user_ids_", ()))

    def __contains__(self, user_id: object) -> bool:
        return hasattr(self, "user_ids_") and str(user_id) in self._row_of

    def rows(self, user_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``user_ids`` (-1 for unknown users)."""
        self._check()
        if not isinstance(user_ids, pd.Index):
            user_ids = pd.Index([str(u) for u in user_ids], dtype=object)
        return self._row_of.get_indexer(user_ids)

    def _row(self, user_id: str) -> int:
        self._check()
        row = self._row_of.get_indexer([str(user_id)])[0]
        if row < 0:
            raise UnknownIdError(
                f"user_id {user_id!r} has no interactions in the fitted profiles ({len(self)} users); "
                "pass history=[item ids] for a new user"
            )
        return int(row)

    def vector(self, user_id: str, modality: str = "fused") -> np.ndarray:
        """The user's taste vector in ``modality`` (zeros if none of their items has it)."""
        if modality not in self.vectors_:
            raise ValueError(f"modality must be one of {sorted(self.vectors_)}; got {modality!r}")
        return self.vectors_[modality][self._row(user_id)].copy()

    def interests(self, user_id: str) -> np.ndarray:
        """Interest vectors (m, dim); the single taste vector when multi-interest is off or history is short."""
        row = self._row(user_id)
        return self.interests_.get(row, self.vectors_["fused"][row][None, :]).copy()

    def seen(self, user_id: str, *, liked: bool = False) -> np.ndarray:
        """Item ids the user interacted with (chronology not kept), as an object array.

        ``liked=True`` leaves out the items the user rated below ``config.like_threshold``.
        """
        return self._seen_at(self._row(user_id), liked)

    def seen_many(self, user_ids: Sequence[str | None], *, liked: bool = False) -> list[np.ndarray]:
        """:meth:`seen` for many users at once (one index lookup); ``None`` or an unknown user gives
        an empty array instead of raising."""
        self._check()
        known = [j for j, u in enumerate(user_ids) if u is not None]
        rows = np.full(len(user_ids), -1, dtype=np.int64)
        if known:
            rows[known] = self.rows([user_ids[j] for j in known])
        return [self._seen_at(int(r), liked) if r >= 0 else np.empty(0, dtype=object) for r in rows]

    def _seen_at(self, row: int, liked: bool = False) -> np.ndarray:
        items = self._seen_items[self._seen_ptr[row]:self._seen_ptr[row + 1]]
        if liked:
            bad = self._seen_disliked[self._seen_ptr[row]:self._seen_ptr[row + 1]]
            if bad.any():
                items = items[~np.isin(items, items[bad])]  # rated low once: never shown as liked
        return np.unique(items)

    # --------------------------------------------------------------- persistence
    def save_arrays(self, directory: Path) -> list[str]:
        """Write arrays into ``directory`` (part of a model artefact); returns file names."""
        self._check()
        files = {"user_ids.npy": self.user_ids_.astype(str), "seen_items.npy": self._seen_items.astype(str),
                 "seen_ptr.npy": self._seen_ptr.astype(np.int64), "seen_disliked.npy": self._seen_disliked}
        for m in self.vectors_:
            files[f"user_vec_{m}.npy"] = self.vectors_[m]
            files[f"user_has_{m}.npy"] = self.present_[m]
        if self.interests_:
            rows = np.array(sorted(self.interests_), dtype=np.int64)
            counts = np.array([len(self.interests_[r]) for r in rows], dtype=np.int64)
            files["interest_rows.npy"] = rows
            files["interest_counts.npy"] = counts
            files["interest_vecs.npy"] = np.concatenate([self.interests_[r] for r in rows])
        for name, arr in files.items():
            atomic_save_npy(directory / name, arr)
        return list(files)

    @classmethod
    def load_arrays(cls, directory: Path, config: ProfileConfig, modalities: Sequence[str]) -> "UserProfiles":
        prof = cls(config)
        prof.user_ids_ = load_npy(directory / "user_ids.npy").astype(object)
        prof._row_of = pd.Index(prof.user_ids_)
        prof._seen_items = load_npy(directory / "seen_items.npy").astype(object)
        prof._seen_ptr = load_npy(directory / "seen_ptr.npy")
        # models saved before ratings were kept per interaction: every item counts as liked
        prof._seen_disliked = load_npy(directory / "seen_disliked.npy").astype(bool) \
            if (directory / "seen_disliked.npy").exists() else np.zeros(len(prof._seen_items), dtype=bool)
        prof.vectors_ = {m: load_npy(directory / f"user_vec_{m}.npy") for m in modalities}
        prof.present_ = {m: load_npy(directory / f"user_has_{m}.npy").astype(bool) for m in modalities}
        prof.interests_ = {}
        if (directory / "interest_rows.npy").exists():
            rows = load_npy(directory / "interest_rows.npy")
            counts = load_npy(directory / "interest_counts.npy")
            vecs = load_npy(directory / "interest_vecs.npy")
            starts = np.concatenate([[0], np.cumsum(counts)])
            prof.interests_ = {int(r): vecs[starts[i]:starts[i + 1]] for i, r in enumerate(rows)}
        prof.n_unknown_items_ = 0
        return prof

    def config_dict(self) -> dict:
        return asdict(self.config)
