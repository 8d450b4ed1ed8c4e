"""Evaluate generated content of a :class:`~recgen.generators.ContentGenerator`."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from recgen.catalog.data import CatalogData


def preview_metrics(gen, catalog: CatalogData, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
                    n_candidates: int = 100, history_per_user: int = 20) -> dict[str, Any]:
    """FID (image-encoder feature space), identifiability and personalization of previews.

    Parameters
    ----------
    gen : ContentGenerator
        Fitted, with an image generator.
    catalog : CatalogData
        Items (real images) and the interactions that define each user's history.
    pairs : sequence of (user_id, item_id)
        Pairs to generate for (items must have a real image).
    """
    from PIL import Image

    from recgen.evaluation.generation import frechet_distance, identifiability, personalization_gain

    model = gen.model
    space = model.space
    items = catalog.items.assign(item_id=catalog.items["item_id"].astype(str))
    with_img = items[items["image_path"].map(lambda p: isinstance(p, str) and bool(p))]
    real_ids = with_img["item_id"].tolist()
    real_feats = space.image_features(with_img["image_path"].tolist(),
                                      keys=with_img["image_sha256"].tolist() if "image_sha256" in with_img else None,
                                      cache=None)
    row_of = {i: r for r, i in enumerate(real_ids)}
    pairs = [(u, i) for u, i in pairs if i in row_of]
    users, item_ids = [u for u, _ in pairs], [i for _, i in pairs]
    personal = gen.generate(users, item_ids, seed=seed, blurbs=False).images
    # the neutral preview: the same items for the neutral user (None), same seed, so the two differ
    # only by the user
    neutral = gen.generate([None] * len(item_ids), item_ids, seed=seed, blurbs=False).images
    feats_p = space.image_features([Image.fromarray(x) for x in personal])
    feats_n = space.image_features([Image.fromarray(x) for x in neutral])
    hist = catalog.interactions.assign(item_id=catalog.interactions["item_id"].astype(str))
    hist = hist.sort_values("timestamp").groupby("user_id")["item_id"].agg(list)
    history_feats = []
    for u in users:
        rows = [row_of[i] for i in hist.get(u, [])[-history_per_user:] if i in row_of]
        history_feats.append(real_feats[rows] if rows else real_feats[:0])
    keep = [j for j, h in enumerate(history_feats) if len(h)]
    out = {
        "pairs": len(pairs),
        "fid_feature_space": float(frechet_distance(real_feats, feats_p)),
        "fid_neutral": float(frechet_distance(real_feats, feats_n)),
        "identifiability": identifiability(feats_p, real_feats, np.array([row_of[i] for i in item_ids]),
                                           n_candidates=n_candidates, seed=seed),
        "personalization": personalization_gain(feats_p[keep], feats_n[keep], [history_feats[j] for j in keep],
                                                seed=seed),
    }
    return out


def blurb_metrics(gen, catalog: CatalogData, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
                  references: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Faithfulness, diversity and (with ``references``) BLEU/ROUGE of the blurbs for ``pairs``."""
    from recgen.evaluation.generation import blurb_report

    out = gen.generate([u for u, _ in pairs], [i for _, i in pairs], seed=seed, images=False)
    items = catalog.items.assign(item_id=catalog.items["item_id"].astype(str)).set_index("item_id")
    revs = catalog.reviews.assign(item_id=catalog.reviews["item_id"].astype(str)).groupby("item_id")["text"].agg(" ".join) \
        if len(catalog.reviews) else pd.Series(dtype=object)
    sources = [f"{items.at[i, 'title']} {items.at[i, 'description']} {revs.get(i, '')}" for _, i in pairs]
    refs = [references.get(i, []) if references else [sources[j]] for j, (_, i) in enumerate(pairs)]
    return blurb_report(out.blurbs, refs, sources=sources)
