"""Benchmark: the image encoder's CPU micro-batches vs one forward pass per batch.

Standalone script (never imported by tests). The SAME loaded EfficientNet-Lite0
(``ImageFeatureEncoder.model``) runs the same preprocessed images two ways, alternated round
by round:

* reference: one ``extract_features`` call per ``--batch`` images (what the encoder did before
  it sliced batches on CPU);
* recgen: ``ImageFeatureEncoder.encode`` on the same images (decoding and the colour
  histogram are timed too, so the ratio understates the network's own speed-up).

Speed is the ratio recgen / reference in images per second, for each torch thread count in
``--threads``; the largest difference between the two feature vectors is printed too.

Run::

    .venv/bin/python benchmarks/bench_image_encode.py                  # sample shop images
    .venv/bin/python benchmarks/bench_image_encode.py --threads 1 2 --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=128, help="images (from the sample shop)")
    ap.add_argument("--batch", type=int, default=64, help="the encoder's batch size (SpaceConfig.batch_size)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from recgen.datasets import make_sample_catalog
    from recgen.encoders.base import l2_normalize
    from recgen.encoders.image import ImageFeatureEncoder

    with tempfile.TemporaryDirectory() as tmp:
        cat = make_sample_catalog(Path(tmp) / "shop", seed=0)
        paths = [str(p) for p in cat.items["image_path"].dropna().tolist()[: args.n]]
        enc = ImageFeatureEncoder(device="cpu")
        x, _ = enc.preprocess(paths)
        print(f"{len(paths)} images, batch {args.batch}, micro-batch {enc.CPU_MICRO_BATCH}, torch {torch.__version__}")
        print("| threads | reference img/s | recgen img/s | ratio | max abs diff |")
        print("|---|---|---|---|---|")
        for threads in args.threads:
            torch.set_num_threads(threads)
            ref_t, rec_t, diff = [], [], 0.0
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    ref = np.concatenate([enc.model.extract_features(x[s:s + args.batch]).mean(dim=(2, 3)).numpy()
                                          for s in range(0, len(x), args.batch)])
                ref_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                out = enc.encode(paths, batch_size=args.batch)
                rec_t.append(time.perf_counter() - t0)
                diff = max(diff, float(np.abs(out[:, :enc.CNN_DIM] / np.linalg.norm(out[:, :enc.CNN_DIM], axis=1,
                                                                                    keepdims=True)
                                              - l2_normalize(ref)).max()))
            r, g = len(paths) / statistics.median(ref_t), len(paths) / statistics.median(rec_t)
            print(f"| {threads} | {r:.1f} | {g:.1f} | {g / r:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
