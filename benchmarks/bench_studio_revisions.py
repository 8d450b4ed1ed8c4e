"""Benchmark: the studio preview generator of this working tree against the one of a git revision,
paired in one process.

Standalone script (never imported by tests). Single runs of ``bench_generate.py``'s speed passes
vary by up to 2x between runs on a shared machine, so a code change's effect is measured here
as a ratio against the reference in the same run: the studio modules
(``recgen/generators/studio.py`` and ``recgen/generators/nets/studio.py``) of ``--base`` are
loaded beside the working tree's, given the *same* fitted state (library, mood cVAE, editor
weights), and both draw the same 512 random (item, user) pairs in batches of 64. Each round
empties both generators' caches and times the four passes of ``bench_generate.py`` (with photo,
first and cached; text only, first and cached), alternating which side goes first. Printed: the
median previews/s of each side, their ratio, and how many pixel values differ between the two.

Run::

    .venv/bin/python benchmarks/bench_studio_revisions.py --base a8936c0        # 1 thread, 5 rounds
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FILES = {"studio": "recgen/generators/studio.py", "nets": "recgen/generators/nets/studio.py"}
PASSES = ("photo", "photo (cached)", "text", "text (cached)")


def _module(name: str, source: str, where: Path):
    path = where / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _base_generator(gen, rev: str, where: Path):
    """A generator of ``rev``'s studio classes holding ``gen``'s fitted state (its own caches)."""
    src = {k: subprocess.run(["git", "show", f"{rev}:{p}"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout for k, p in FILES.items()}
    nets = _module("base_studio_nets", src["nets"], where)
    studio = _module("base_studio", src["studio"].replace("from recgen.generators.nets.studio import",
                                                          "from base_studio_nets import"), where)
    base = studio.StudioGenerator.__new__(studio.StudioGenerator)
    base.__dict__.update(copy.copy(gen.__dict__))
    base._nets = dict(gen._nets)
    # the revision's own settings class: the settings both have keep this tree's values, settings only the
    # revision has keep its defaults (its outputs then differ where the two draw differently by design)
    fields = {f.name for f in dataclasses.fields(studio.StudioConfig)}
    base.config = studio.StudioConfig(**{k: v for k, v in dataclasses.asdict(gen.config).items() if k in fields})
    ed = gen._nets.get("editor")
    if ed is not None:
        twin = nets.BilateralEditor(ed.cond[0].in_features, grid=ed.grid, depth=ed.depth,
                                    width=ed.stages[0].out_channels, low_res=ed.low_res)
        twin.load_state_dict(ed.state_dict())
        base._nets["editor"] = twin.eval()
    base.__dict__.pop("_mood64", None)  # each side makes its own float64 mood network
    base._structure_unit = None
    base._card_colours = None
    base._fresh_caches()
    return base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="git revision whose studio modules are the reference")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--editor-epochs", type=int, default=1, help="speed does not depend on the editor's training")
    args = ap.parse_args()

    import torch

    from recgen import Recgen
    from recgen.datasets import make_sample_catalog
    from recgen.generators import GenerationContext, make_generator

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="recgen-bench-rev-"))
    catalog = make_sample_catalog(tmp / "sample", seed=0)
    model = Recgen().fit(catalog)
    new = make_generator("studio", editor_epochs=args.editor_epochs).fit(GenerationContext(model, catalog))
    old = _base_generator(new, args.base, tmp)
    ctx = GenerationContext(model)
    pick = np.random.default_rng(0)
    ids = [str(i) for i in pick.choice(new.ids, 512)]
    users = [str(u) for u in pick.choice([str(u) for u in model.profiles.user_ids_], 512)]

    def run(gen, mode):
        t = time.perf_counter()
        images = [gen.generate(ctx, ids[s:s + 64], users[s:s + 64], seed=0, mode=mode).images for s in range(0, 512, 64)]
        return 512 / (time.perf_counter() - t), np.concatenate(images)

    speeds = {side: {p: [] for p in PASSES} for side in ("base", "tree")}
    differ = {p: 0 for p in PASSES}
    for r in range(args.rounds):
        order = [("base", old), ("tree", new)] if r % 2 == 0 else [("tree", new), ("base", old)]
        for _, g in order:
            g._sized_cache.clear()
            g._text_cache.clear()
        for p in PASSES:
            drawn = {}
            for side, g in order:
                speed, drawn[side] = run(g, p.split()[0])
                speeds[side][p].append(speed)
            differ[p] = max(differ[p], int((drawn["base"] != drawn["tree"]).sum()))
    print(f"studio previews/s, batches of 64, 512 random pairs, {args.threads} thread(s), median of {args.rounds} "
          f"paired rounds; base = {args.base}")
    print(f"{'pass':16s} {'base':>8s} {'tree':>8s} {'tree/base':>10s}  pixel values that differ (of {512 * 128 * 128 * 3})")
    for p in PASSES:
        b, t = np.median(speeds["base"][p]), np.median(speeds["tree"][p])
        ratios = np.array(speeds["tree"][p]) / np.array(speeds["base"][p])
        print(f"{p:16s} {b:8.0f} {t:8.0f} {np.median(ratios):9.2f}x  {differ[p]}")


if __name__ == "__main__":
    main()
