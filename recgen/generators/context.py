"""What generators train on and condition on: :class:`GenerationContext`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from recgen.errors import UnknownIdError
from recgen.modalities import FUSED
from recgen.profiles import disliked

if TYPE_CHECKING:
    from recgen.catalog.data import CatalogData
    from recgen.model import Recgen


@dataclass
class GenerationContext:
    """A fitted model (the conditions) and, for fitting, the catalog (the training data).

    Every generator's ``fit`` and ``generate`` take one; generators read what they need
    through its helpers, so the model's layout is known in one place.

    Attributes
    ----------
    model : Recgen
        Fitted. ``model.items.vectors[modality]`` holds the item vectors,
        ``model.profiles`` the user taste vectors, ``model.space.encode_text`` embeds text
        in the shared space.
    catalog : CatalogData, optional
        Items (with image paths and text), reviews and interactions. Required by ``fit``;
        optional at generation (generators keep what they need of it in their artefact).
    nameable : callable, optional
        ``item ids -> bool array``: which history items a blurb may name and a preview may
        show. :class:`~recgen.generators.ContentGenerator` sets it to its preview generator's
        ``can_show`` when that generator shows a history card, so a blurb never names an item
        the card cannot show (the two name the same item). ``None``: any liked history item.

    Examples
    --------
    >>> ctx = GenerationContext(model, catalog)
    >>> gen = make_generator("cvae", epochs=10).fit(ctx)
    >>> gen.generate(GenerationContext(model), ["SKU-0001"], ["U0001"], seed=0).images.shape
    """

    model: "Recgen"
    catalog: "CatalogData | None" = None
    nameable: "Callable[[Sequence[str]], np.ndarray] | None" = None

    def require_catalog(self, who: str) -> "CatalogData":
        """The catalog, or a ValueError saying ``who`` needs one."""
        if self.catalog is None:
            raise ValueError(f"{who} needs the catalog to train on: pass "
                             "GenerationContext(model, catalog=CatalogData(...))")
        return self.catalog

    @property
    def encode_text(self) -> Callable[[list[str]], np.ndarray]:
        """The shared space's text encoder (the space the user taste vectors live in)."""
        return self.model.space.encode_text

    @property
    def dim(self) -> int:
        """Width of the item and user vectors."""
        return int(self.model.items.dim)

    def item_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows of ``item_ids`` in the model's item table, int64 (n,).

        Raises
        ------
        UnknownIdError
            Some ids are not items of the model (the message names them).
        """
        item_ids = [str(i) for i in item_ids]
        rows = self.model.items.rows(item_ids)
        if (rows < 0).any():
            bad = list(dict.fromkeys(i for i, r in zip(item_ids, rows) if r < 0))
            raise UnknownIdError(f"{len(bad)} item id(s) are not in the model, e.g. {bad[:5]}; "
                                 "add them with model.update_items(...) first")
        return np.asarray(rows, dtype=np.int64)

    def item_vectors(self, rows: np.ndarray, modality: str = FUSED) -> np.ndarray:
        """Item vectors of ``modality`` at ``rows`` (from :meth:`item_rows`), float32 (n, dim)."""
        vectors = self.model.items.vectors
        if modality not in vectors:
            raise ValueError(f"modality must be one of {sorted(vectors)}; got {modality!r}")
        return np.asarray(vectors[modality][rows], dtype=np.float32)

    def user_vectors(self, user_ids: Sequence[str | None]) -> np.ndarray:
        """Fused taste vectors, float32 (n, dim); ``None`` or an unknown user gives zeros (neutral)."""
        out = np.zeros((len(user_ids), self.dim), dtype=np.float32)
        known = [u is not None for u in user_ids]
        if any(known):
            rows = self.model.profiles.rows([u for u in user_ids if u is not None])
            idx = np.flatnonzero(known)
            ok = rows >= 0
            out[idx[ok]] = self.model.profiles.vectors_[FUSED][rows[ok]]
        return out

    def user_histories(self, user_ids: Sequence[str | None], *, liked: bool = False) -> list[list[str]]:
        """Item ids each user interacted with; ``None`` or an unknown user gives ``[]``.

        From the catalog's interactions when there is a catalog (chronological when they
        have a ``timestamp``), else from the model's profiles (order not kept).

        ``liked=True`` leaves out every item the user rated below the model's
        ``ProfileConfig.like_threshold`` (:func:`recgen.profiles.disliked`), and those
        ``nameable`` rejects: the history a blurb may name and a preview may show beside the
        recommendation.
        """
        histories = self._histories(user_ids, liked)
        if liked and self.nameable is not None:
            every = sorted({i for h in histories for i in h})
            ok = dict(zip(every, np.asarray(self.nameable(every), dtype=bool))) if every else {}
            histories = [[i for i in h if ok[i]] for h in histories]
        return histories

    def _histories(self, user_ids: Sequence[str | None], liked: bool) -> list[list[str]]:
        if self.catalog is not None and self.catalog.interactions is not None:
            inter = self.catalog.interactions
            if "timestamp" in inter.columns:
                inter = inter.sort_values("timestamp", kind="stable")
            inter = inter.assign(user_id=inter["user_id"].astype(str), item_id=inter["item_id"].astype(str))
            if liked and "rating" in inter.columns:
                bad = disliked(inter["rating"], self.model.profiles.config.like_threshold)
                if bad.any():
                    pairs = pd.MultiIndex.from_arrays([inter["user_id"], inter["item_id"]])
                    inter = inter[~pairs.isin(pairs[bad])]  # rated low once: never shown as liked
            by_user = inter.groupby("user_id")["item_id"].agg(list)
            return [list(by_user.get(str(u), [])) if u is not None else [] for u in user_ids]
        return [[str(i) for i in seen] for seen in self.model.profiles.seen_many(user_ids, liked=liked)]


def paired(item_ids: Sequence[str], user_ids: Sequence[str | None]) -> tuple[list[str], list[str | None]]:
    """``(item ids as str, user ids)`` as lists, checked to be one user per item.

    Raises
    ------
    ValueError
        The two differ in length.
    """
    item_ids, user_ids = [str(i) for i in item_ids], list(user_ids)
    if len(item_ids) != len(user_ids):
        raise ValueError(f"item_ids has {len(item_ids)} entries but user_ids has {len(user_ids)}; "
                         "pass one user (or None) per item")
    return item_ids, user_ids


def output_user_ids(user_ids: Sequence[str | None]) -> list[str]:
    """User ids as the output dataclasses list them: ``""`` for the neutral user."""
    return ["" if u is None else str(u) for u in user_ids]
