"""Benchmark: how well the attribute judges read real photos they were not trained on (no generator).

Standalone script (never imported by tests). A judge of generated previews is only as good as
its reading of real photos presented the way a preview presents them, so the judge's design is
chosen here, on the catalog's real photos alone: no generator output is involved.

The sample shop's photos are split into 5 folds. For each fold, a judge is trained on the other
four (with the page judge's augmentations, ``distractors=2, backdrops=2``, or as the strict
judge with ``--strict``) and reads the held-out fold's photos three ways:

* ``plain``: the photos as they are;
* ``backdrop``: on random light backdrops (:func:`recgen.evaluation.judges.light_backdrops`);
* ``corner``: with another (training) photo at 40 % of the side in the top-right corner, as a
  history card sits, then on a light backdrop.

Printed: category / colour / pattern accuracy of each reading, for the judge with and without
:func:`recgen.evaluation.judges.texture_features` (``AttributeJudge(texture=...)``).

Run::

    .venv/bin/python benchmarks/bench_judges.py --seeds 0 2 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ATTRS = ("category", "colour", "pattern")


def _with_corner(images: np.ndarray, others: np.ndarray, share: float = 0.4) -> np.ndarray:
    from PIL import Image

    out = images.copy()
    s = images.shape[1]
    side = int(round(share * s))
    for j, other in enumerate(others):
        out[j, :side, s - side:] = np.asarray(Image.fromarray(other).resize((side, side), Image.BILINEAR))
    return out


def run(seed: int, strict: bool, size: int) -> None:
    import recgen.datasets as datasets
    from recgen.encoders.image import load_image
    from recgen.evaluation.judges import AttributeJudge, light_backdrops

    data = datasets.load("sample", Path(tempfile.mkdtemp(prefix="recgen-bench-judges-")) / "sample", seed)
    items = data.items[data.items["image_path"].map(lambda p: isinstance(p, str) and bool(p))].reset_index(drop=True)
    real = np.stack([np.asarray(load_image(p).resize((size, size)), dtype=np.uint8) for p in items["image_path"]])
    labels = {a: np.array([str(d[a]) for d in items["attributes"]], dtype=object) for a in ATTRS}
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(real)) % 5
    corner_of = [rng.integers(0, (fold != f).sum(), (fold == f).sum()) for f in range(5)]
    print(f"\nsample shop, seed {seed}: {len(real)} photos, "
          + ", ".join(f"{len(set(v))} {a} values" for a, v in labels.items())
          + f"; {'strict' if strict else 'page'} judge, 5 folds")
    for texture in (False, True):
        t = time.perf_counter()
        hits: dict[str, dict[str, list[np.ndarray]]] = {k: {a: [] for a in ATTRS} for k in ("plain", "backdrop", "corner")}
        for f in range(5):
            train, test = fold != f, fold == f
            make = AttributeJudge if strict else AttributeJudge.for_pages
            judge = make(ATTRS, seed=seed, texture=texture).fit(
                real[train], {a: v[train] for a, v in labels.items()})
            shown = {"plain": real[test],
                     "backdrop": light_backdrops(real[test], seed=seed + 100 + f),
                     "corner": light_backdrops(_with_corner(real[test], real[train][corner_of[f]]), seed=seed + 200 + f)}
            for key, images in shown.items():
                pred = judge.predict(images)
                for a in ATTRS:
                    hits[key][a].append(np.asarray(pred[a]) == labels[a][test])
        cells = "  ".join(f"{k} " + " / ".join(f"{np.concatenate(v[a]).mean():.3f}" for a in ATTRS)
                          for k, v in hits.items())
        print(f"  texture={texture!s:<5}  {cells}  ({time.perf_counter() - t:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 2, 3], help="sample-shop seeds (one catalog each)")
    ap.add_argument("--strict", action="store_true", help="the strict judge (no page augmentations)")
    ap.add_argument("--size", type=int, default=128, help="photo side before the judge's own resize")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print("category / colour / pattern accuracy on held-out folds' real photos (judge trained on the other folds)")
    for seed in args.seeds:
        run(seed, args.strict, args.size)


if __name__ == "__main__":
    main()
