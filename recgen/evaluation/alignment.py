"""Cross-modal alignment: does an item's image vector find the item's own text?"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recgen.encoders.base import l2_normalize


@dataclass
class AlignmentResult:
    """Image -> text retrieval of held-out items against the texts of *all* items.

    Attributes
    ----------
    n_queries : int
        Held-out items with an image.
    n_candidates : int
        Texts searched (the whole catalog).
    top1, top10 : float
        Share of held-out images whose own text ranks first / in the top 10.
    chance_top1, chance_top10 : float
        The same for a random ranking (1/N, 10/N).
    """

    n_queries: int
    n_candidates: int
    top1: float
    top10: float
    chance_top1: float
    chance_top10: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def image_to_text_retrieval(image_vecs: np.ndarray, text_vecs: np.ndarray, query_rows: np.ndarray) -> AlignmentResult:
    """Rank all ``text_vecs`` for each ``image_vecs[query_rows]``; hits are the same row."""
    img = l2_normalize(image_vecs[query_rows])
    txt = l2_normalize(text_vecs)
    sims = img @ txt.T
    own = sims[np.arange(len(query_rows)), query_rows]
    rank = (sims > own[:, None]).sum(axis=1)  # 0 = first
    n = len(text_vecs)
    return AlignmentResult(n_queries=len(query_rows), n_candidates=n, top1=float(np.mean(rank < 1)),
                           top10=float(np.mean(rank < 10)), chance_top1=1 / n, chance_top10=min(1.0, 10 / n))


def held_out_alignment(space, catalog, *, held_out_fraction: float = 0.2, seed: int = 0, cache=None,
                       random_projection: bool = False) -> AlignmentResult:
    """Train ``space``'s projection without a random ``held_out_fraction`` of the items, then
    measure held-out image -> text retrieval against every item's text.

    ``random_projection=True`` evaluates an untrained (randomly initialized) projection instead:
    the baseline that shows what training adds.
    """
    ids = catalog.items["item_id"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    held = set(ids[rng.permutation(len(ids))[: int(round(held_out_fraction * len(ids)))]])
    if random_projection:
        space.config.projection.epochs = 0
    vectors = space.fit(catalog, cache=cache, train_item_ids=[i for i in ids if i not in held])
    rows = np.flatnonzero(np.isin(vectors.ids, list(held)) & vectors.present["image"])
    return image_to_text_retrieval(vectors.vectors["image"], vectors.vectors["text"], rows)
