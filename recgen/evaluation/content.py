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


def blurb_evidence(items: pd.DataFrame, reviews: pd.DataFrame | None, item_id: str,
                   sources: Sequence[str] | None = None) -> str:
    """The catalog text a blurb of ``item_id`` may draw on, read from the catalog frames.

    Without ``sources``: the item's title, description, attributes (``"name value"``) and all
    its reviews, plus the title and attributes of every history item the sources name. With
    ``sources`` (a blurb's clause provenance, e.g. ``["history:SKU-7", "attribute:colour",
    "review:12"]``): only the text of the cited sources, so a clause citing the wrong source
    is caught. Built from the frames, not from the generator, so it judges the generator
    independently.

    Parameters
    ----------
    items : DataFrame
        ``item_id``, ``title``, optional ``description`` and ``attributes``.
    reviews : DataFrame or None
        ``item_id``, ``text``; row labels are the ``review:<label>`` ids.
    item_id : str
    sources : sequence of str, optional
    """
    by_id = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")

    def field(i: str, col: str) -> str:
        v = by_id.at[i, col] if col in by_id.columns and i in by_id.index else ""
        return v if isinstance(v, str) else ""

    def attrs(i: str, names: Sequence[str] | None = None) -> str:
        from recgen.generators.grounded import parse_attributes

        a = parse_attributes(by_id.at[i, "attributes"]) if "attributes" in by_id.columns and i in by_id.index else {}
        return " ".join(f"{k.replace('_', ' ')} {v}" for k, v in a.items() if names is None or k in names)

    parts: list[str] = []
    cited = list(sources) if sources is not None else None
    if cited is None:
        parts += [field(item_id, "title"), field(item_id, "description"), attrs(item_id)]
        if reviews is not None and len(reviews):
            parts += reviews.loc[reviews["item_id"].astype(str) == item_id, "text"].astype(str).tolist()
        return " ".join(p for p in parts if p)
    for src in cited:
        kind, _, rest = src.partition(":")
        if kind == "description":
            parts.append(field(item_id, "description"))
        elif kind == "title":
            parts.append(field(item_id, "title"))
        elif kind == "attribute":
            parts.append(attrs(item_id, [rest]))
        elif kind == "review" and reviews is not None:
            label = next((lab for lab in reviews.index if str(lab) == rest), None)
            if label is not None and str(reviews.at[label, "item_id"]) == item_id:
                parts.append(str(reviews.at[label, "text"]))
        elif kind == "history":  # "history:<id>" (its title) or "history:<id>:<attribute>"
            hid, _, name = rest.rpartition(":")
            if rest in by_id.index or not hid:
                parts.append(field(rest, "title"))
            else:
                parts.append(attrs(hid, [name]))
    return " ".join(p for p in parts if p)


def blurb_metrics(gen, catalog: CatalogData, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
                  references: dict[str, list[str]] | None = None,
                  contrast: dict[str, str] | None = None) -> dict[str, Any]:
    """Faithfulness, diversity, (with ``contrast``) personalization and (with ``references``)
    BLEU/ROUGE of the blurbs for ``pairs`` of (user, item).

    Faithfulness is measured twice: against the item's whole text (plus the history item a
    blurb names), and against only the sources each blurb cites (``faithfulness_cited``).
    Template words of the grounded generator (:data:`~recgen.generators.grounded.TEMPLATE_WORDS`)
    count as connectives, not content.

    ``contrast`` maps a user to another user (e.g. the one whose taste is least like theirs):
    ``personalization_swap`` is then the swap test of
    :func:`~recgen.evaluation.generation.text_personalization` on the pairs whose user has one:
    the two users' blurbs of the same item are each closer (TF-IDF words) to their own user's
    history (the catalog interactions' items, newest 50) than swapped. Chance is 0.5.

    ``references`` maps an item to held-out texts (e.g. reviews kept out of training) for
    BLEU/ROUGE; without it those keys are left out (there is nothing held out to compare with).
    """
    from recgen.evaluation.generation import blurb_report, faithfulness, text_personalization
    from recgen.generators.grounded import TEMPLATE_WORDS, anchor_of

    out = gen.generate([u for u, _ in pairs], [i for _, i in pairs], seed=seed, images=False)
    reviews = catalog.reviews if catalog.reviews is not None and len(catalog.reviews) else None
    sources = []
    for (_, i), src in zip(pairs, out.sources):
        text = blurb_evidence(catalog.items, reviews, str(i))
        anchor = anchor_of(src)
        if anchor is not None:  # the named history item's title and attributes
            text += " " + blurb_evidence(catalog.items, None, anchor,
                                         [f"history:{anchor}", *(f"attribute:{n}" for n in _attribute_names(catalog, anchor))])
        sources.append(text)
    refs = [references.get(i, []) for _, i in pairs] if references else None
    connectives = TEMPLATE_WORDS if getattr(gen.config, "blurb_generator", None) == "grounded" else ()
    report = blurb_report(out.blurbs, refs, sources=sources, connectives=connectives)
    if any(out.sources):
        cited = [blurb_evidence(catalog.items, reviews, str(i), src) for (_, i), src in zip(pairs, out.sources)]
        report["faithfulness_cited"] = faithfulness(out.blurbs, cited, connectives=connectives)["mean"]
        report["names_history_item"] = float(sum(anchor_of(s) is not None for s in out.sources) / max(len(pairs), 1))
    keep = [j for j, (u, _) in enumerate(pairs) if contrast and contrast.get(u) is not None]
    if keep:
        from recgen.generators.context import GenerationContext

        users = [pairs[j][0] for j in keep]
        others = [contrast[u] for u in users]
        theirs = gen.generate(others, [pairs[j][1] for j in keep], seed=seed, images=False).blurbs
        ctx = GenerationContext(gen.model, catalog)  # chronological histories from the catalog's interactions
        report["personalization_swap"] = text_personalization(
            [out.blurbs[j] for j in keep], history_texts(catalog.items, ctx.user_histories(users)),
            history_texts(catalog.items, ctx.user_histories(others)), other_blurbs=theirs, seed=seed)
    return report


def history_texts(items: pd.DataFrame, histories: Sequence[Sequence[str]], limit: int = 50) -> list[str]:
    """Each history's newest ``limit`` items as one text (their titles, descriptions and attributes,
    :func:`blurb_evidence`): what a blurb is compared with to judge whose history it fits; "-" for
    an empty history."""
    return [" ".join(blurb_evidence(items, None, str(h)) for h in list(hist)[-limit:]) or "-" for hist in histories]


def _attribute_names(catalog: CatalogData, item_id: str) -> list[str]:
    from recgen.generators.grounded import parse_attributes

    items = catalog.items
    if "attributes" not in items.columns:
        return []
    hit = items.loc[items["item_id"].astype(str) == item_id, "attributes"]
    return list(parse_attributes(hit.iloc[0]).keys()) if len(hit) else []
