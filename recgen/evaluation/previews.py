"""One report of how good preview images are, by judges the generators never see.

:func:`judge_previews` takes the previews of a set of (user, item) pairs (personal, neutral and
a contrasting user's), the real photos, and the users' history photos, and returns every
figure issue-style targets ask for, all computed with :mod:`recgen.evaluation.judges`
(pixel-only features, classifiers trained only on real photos):

* ``attributes``: attribute accuracy of the previews as read by an
  :class:`~recgen.evaluation.judges.AttributeJudge` (when given a judge and labels);
* ``sharpness_ratio``: Laplacian variance of the previews over the real photos';
* ``identifiability``: each preview's own item among ``n_candidates`` real photos, by
  :func:`~recgen.evaluation.judges.independent_features`; with ``localize=True`` also
  ``identifiability_localized``, where a candidate is matched against the preview's best window
  (:func:`~recgen.evaluation.judges.window_features`), so an item shown smaller, letterboxed or
  beside a second picture is still found;
* ``fid``: Fréchet distance between previews and real photos in that feature space;
* ``personalization``: shift of each preview toward its user's history versus the neutral
  preview of the same item (bootstrap CI), in whole-picture features;
* ``personalization_presentation``: the same shift measured on the colours of what
  personalization changed (the pixels where the personal and neutral previews differ) against
  the colours of the user's history products (:func:`~recgen.evaluation.judges.presentation_colours`);
* ``visible_difference``: share of pairs whose preview for a contrasting user differs visibly
  (mean absolute pixel difference above ``visible_threshold``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from recgen.evaluation.generation import frechet_distance, identifiability, personalization_gain
from recgen.evaluation.judges import (independent_features, presentation_colours, sharpness_ratio, visible_difference,
                                     window_features)

__all__ = ["judge_previews"]


def judge_previews(personal: np.ndarray, item_rows: Sequence[int], real_images: np.ndarray, *,
                   neutral: np.ndarray | None = None, contrast: np.ndarray | None = None,
                   histories: Sequence[np.ndarray] | None = None, judge: Any = None,
                   labels: dict[str, Sequence[str]] | None = None, n_candidates: int = 100,
                   visible_threshold: float = 0.03, localize: bool = False, seed: int = 0) -> dict[str, Any]:
    """Independent figures of previews; see the module docstring.

    Parameters
    ----------
    personal : uint8 (n, S, S, 3)
        The previews (for their users).
    item_rows : sequence of int
        Row of each preview's item in ``real_images``.
    real_images : uint8 (m, H, W, 3)
        Real photos of the candidate items (previews are identified among them).
    neutral : uint8 (n, S, S, 3), optional
        The neutral preview of each pair's item (same seed): needed for ``personalization``.
    contrast : uint8 (n, S, S, 3), optional
        The preview of the same item for a contrasting user: needed for ``visible_difference``.
    histories : sequence of n uint8 arrays (h_i, H, W, 3), optional
        Each pair's user history photos (pairs with none are left out of ``personalization``).
    judge : AttributeJudge, optional
        Fitted on real photos only.
    labels : dict of attribute -> n values, optional
        The items' true attribute values, for ``judge``.
    n_candidates : int
    visible_threshold : float
    localize : bool
        Also report ``identifiability_localized`` (slower: about 200 windows per preview).
    seed : int

    Returns
    -------
    dict
    """
    personal = np.asarray(personal)
    rows = np.asarray(item_rows, dtype=np.int64)
    if len(rows) != len(personal):
        raise ValueError(f"item_rows has {len(rows)} entries for {len(personal)} previews")
    real_feats = independent_features(real_images)
    feats = independent_features(personal)
    out: dict[str, Any] = {
        "n": int(len(personal)),
        "sharpness_ratio": sharpness_ratio(personal, real_images[rows]),
        "identifiability": identifiability(feats, real_feats, rows, n_candidates=n_candidates, seed=seed),
        "fid": float(frechet_distance(real_feats, feats)),
    }
    if localize:
        out["identifiability_localized"] = identifiability(window_features(personal), real_feats, rows,
                                                           n_candidates=n_candidates, seed=seed)
    if judge is not None and labels is not None:
        out["attributes"] = judge.accuracy(personal, labels)
    if neutral is not None and histories is not None:
        keep = [j for j, h in enumerate(histories) if len(h)]
        if len(keep) >= 2:
            hist_feats = [independent_features(histories[j]) for j in keep]
            out["personalization"] = personalization_gain(feats[keep], independent_features(np.asarray(neutral)[keep]),
                                                          hist_feats, seed=seed)
            ph, qh, hh = presentation_colours(personal[keep], np.asarray(neutral)[keep], [histories[j] for j in keep])
            out["personalization_presentation"] = personalization_gain(ph, qh, hh, seed=seed)
    if contrast is not None:
        diff = visible_difference(personal, contrast)
        out["visible_difference"] = {"share": float(np.mean(diff > visible_threshold)),
                                     "median": float(np.median(diff)), "threshold": visible_threshold}
    return out
