"""Benchmark: the studio editor's bilateral-grid slicing, recgen's ``slice_grid`` vs the 3-D
``grid_sample`` it replaces, and the whole editor forward pass with each.

Standalone script (never imported by tests). Every speed figure is a ratio against the
reference measured in the same run, alternating the two sides to share the machine's noise:

1. Slicing alone: ``slice_grid(coeffs, guide)`` vs ``F.grid_sample`` on the 5-D grid at
   ``(x, y, guide)`` (align_corners, border), the same inputs, plus the largest difference.
2. The editor's forward pass (``BilateralEditor``, untrained weights: speed does not depend
   on them) with each slicing, on a batch of previews at the preview size.

Run::

    .venv/bin/python benchmarks/bench_editor.py                       # batch 64, 128 px, 1 thread
    .venv/bin/python benchmarks/bench_editor.py --size 256 --threads 2
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=128, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from recgen.generators.nets.studio import BilateralEditor, slice_grid

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, s = args.batch, args.size
    editor = BilateralEditor(48).eval()
    x, cond = torch.rand(n, 3, s, s), torch.randn(n, 48)
    coeffs = torch.randn(n, 12, editor.depth, editor.grid, editor.grid)
    guide = torch.rand(n, s, s)

    def reference(coeffs, guide):
        ys = torch.linspace(-1, 1, s)
        gy, gx = torch.meshgrid(ys, ys, indexing="ij")
        at = torch.stack([gx.expand(n, -1, -1), gy.expand(n, -1, -1), guide * 2 - 1], dim=-1)
        return F.grid_sample(coeffs, at[:, None], mode="bilinear", padding_mode="border",
                             align_corners=True)[:, :, 0]

    def timed(fn, *a):
        t = time.perf_counter()
        with torch.no_grad():
            fn(*a)
        return time.perf_counter() - t

    with torch.no_grad():
        diff = float((slice_grid(coeffs, guide) - reference(coeffs, guide)).abs().max())
    ref_t, new_t = [], []
    for _ in range(args.rounds):  # alternating: both sides see the same noise
        ref_t.append(timed(reference, coeffs, guide))
        new_t.append(timed(slice_grid, coeffs, guide))
    import recgen.generators.nets.studio as nets

    fwd_ref, fwd_new = [], []
    real_slice = nets.slice_grid
    try:
        for _ in range(args.rounds):
            nets.slice_grid = reference
            fwd_ref.append(timed(editor, x, cond))
            nets.slice_grid = real_slice
            fwd_new.append(timed(editor, x, cond))
    finally:
        nets.slice_grid = real_slice

    med = statistics.median
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"batch {n} at {s} px; median of {args.rounds} alternating rounds")
    print(f"slicing: 3-D grid_sample {med(ref_t) * 1e3:.1f} ms, slice_grid {med(new_t) * 1e3:.1f} ms "
          f"-> {med(ref_t) / med(new_t):.2f}x faster; max |difference| {diff:.1e}")
    print(f"editor forward: with 3-D grid_sample {n / med(fwd_ref):.0f} images/s, with slice_grid "
          f"{n / med(fwd_new):.0f} images/s -> {med(fwd_ref) / med(fwd_new):.2f}x")


if __name__ == "__main__":
    main()
