"""Benchmark: recgen text encoding vs raw sentence-transformers, and re-embedding an unchanged catalog.

Standalone script (never imported by tests). Speed is always a ratio against a reference
measured in the same run:

1. Throughput: the SAME loaded ``SentenceTransformer`` (``MultimodalSpace.text_encoder.model``)
   called three ways on the same unique texts, alternated chunk by chunk (``--chunk`` texts)
   over ``--rounds`` rounds:
   raw ``model.encode(texts, batch_size=64, normalize_embeddings=True)``;
   ``TextEncoder.encode`` (no cache); ``MultimodalSpace.encode_text`` with a cold
   ``EmbeddingCache`` (a fresh SQLite file each round: hashing + cache lookups + writes are
   timed). Ratio = recgen throughput / raw throughput (target >= 0.95). A warm-cache pass
   (every text a cache hit) is shown too.
2. Re-ingest + re-embed: ``CatalogStore(db).ingest(sample)`` + ``Recgen().fit(store)`` on a
   fresh database, then again on the same database with the unchanged catalog (the
   content-addressed cache makes it encode nothing); ratio second / first.

Run::

    .venv/bin/python benchmarks/bench_encode.py                    # sample catalog texts, n=2000
    .venv/bin/python benchmarks/bench_encode.py --data movielens   # MovieLens overviews
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MOVIELENS = REPO.parent / "shared" / "data" / "movielens-posters"


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def sample_texts(n: int, seed: int, workdir: Path) -> tuple[list[str], str]:
    """Unique texts recgen encodes for the sample catalog: item texts, then review texts."""
    from recgen.datasets import make_sample_catalog
    from recgen.encoders.space import item_text

    data = make_sample_catalog(workdir / "sample-texts", n_items=400, n_users=600, seed=seed)
    items = data.items
    texts = [item_text(t, d, a) for t, d, a in zip(items["title"], items["description"], items["attributes"])]
    texts += data.reviews["text"].astype(str).tolist()
    total = len(texts)
    # unique: the cache de-duplicates, the raw call does not; equal work needs unique inputs
    uniq = list(dict.fromkeys(t for t in texts if t.strip()))
    return uniq[:n], f"sample catalog (400 items, 600 users, seed {seed}): item texts + reviews, {total} texts, " \
                     f"{len(uniq)} unique, first {min(n, len(uniq))} used"


def movielens_texts(n: int, path: Path) -> tuple[list[str], str]:
    import pandas as pd

    items = pd.read_csv(path / "items.csv")
    ov = items["overview"].dropna().astype(str)
    uniq = list(dict.fromkeys(t for t in ov if t.strip()))
    return uniq[:n], f"MovieLens overviews ({path / 'items.csv'}): {len(uniq)} unique non-empty, " \
                     f"first {min(n, len(uniq))} used"


def bench_throughput(args, texts: list[str], workdir: Path) -> None:
    from recgen.encoders.cache import EmbeddingCache
    from recgen.encoders.space import MultimodalSpace, SpaceConfig

    space = MultimodalSpace(SpaceConfig(batch_size=args.batch_size, device=args.device))
    enc = space.text_encoder
    model = enc.model  # the one SentenceTransformer all three paths use
    print(f"# encoder: {enc!r}, max_seq_length {model.max_seq_length}, batch_size {args.batch_size}")
    words = [len(t.split()) for t in texts]
    print(f"# texts: {len(texts)}, words per text: mean {np.mean(words):.1f}, max {max(words)}")

    model.encode(texts[:256], batch_size=args.batch_size, normalize_embeddings=True)  # warm-up

    # The machine is shared and noisy: instead of one long pass per path, the texts are cut
    # into chunks and the three paths run back to back on each chunk (order rotated), so
    # every recgen timing has a raw timing taken seconds apart to compare with.
    chunks = [texts[s:s + args.chunk] for s in range(0, len(texts), args.chunk)]
    names = ["raw", "TextEncoder.encode", "encode_text + cold cache"]
    totals: dict[str, list[float]] = {k: [] for k in names}
    paired: dict[str, list[float]] = {k: [] for k in names}  # per chunk: t_raw / t_path
    outs: dict[str, list[np.ndarray]] = {}
    encoded = 0
    for r in range(args.rounds):
        cache = EmbeddingCache(workdir / f"cold-{r}.db")  # fresh per round: every text is a miss
        space.last_encoded = {}
        t_round = {k: 0.0 for k in names}
        outs = {k: [] for k in names}
        for c, chunk in enumerate(chunks):
            shift = (c + r) % len(names)
            t_chunk = {}
            for name in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                if name == "raw":
                    out = model.encode(chunk, batch_size=args.batch_size, normalize_embeddings=True)
                elif name == "TextEncoder.encode":
                    out = enc.encode(chunk, batch_size=args.batch_size)
                else:
                    out = space.encode_text(chunk, cache=cache)
                t_chunk[name] = time.perf_counter() - t0
                outs[name].append(np.asarray(out, dtype=np.float32))
            for name in names:
                t_round[name] += t_chunk[name]
                paired[name].append(t_chunk["raw"] / t_chunk[name])
        encoded = space.last_encoded.get("text", 0)
        cache.engine.dispose()
        for name in names:
            totals[name].append(t_round[name])

    # warm cache: every text is a hit (nothing reaches the model)
    warm = EmbeddingCache(workdir / "warm.db")
    space.encode_text(texts, cache=warm)
    warm_times = []
    for _ in range(max(args.rounds, 3)):
        space.last_encoded = {}
        t0 = time.perf_counter()
        warm_out = space.encode_text(texts, cache=warm)
        warm_times.append(time.perf_counter() - t0)
    warm_encoded = space.last_encoded.get("text", 0)

    ref = np.concatenate(outs["raw"])
    med = {k: statistics.median(v) for k, v in totals.items()}
    rows = []
    for name in names:
        diff = float(np.abs(np.concatenate(outs[name]) - ref).max())
        n_enc = encoded if name == "encode_text + cold cache" else len(texts)
        rows.append([name, f"{med[name]:.2f}", " / ".join(f"{x:.2f}" for x in totals[name]),
                     f"{len(texts) / med[name]:.1f}", f"{med['raw'] / med[name]:.3f}",
                     f"{statistics.median(paired[name]):.3f}", n_enc, f"{diff:.1e}"])
    wt = statistics.median(warm_times)
    rows.append(["encode_text + warm cache (all hits)", f"{wt:.3f}", " / ".join(f"{x:.3f}" for x in warm_times),
                 f"{len(texts) / wt:.0f}", f"{med['raw'] / wt:.1f}", "-", warm_encoded,
                 f"{float(np.abs(warm_out - ref).max()):.1e}"])
    table(f"text encoding throughput: {len(texts)} texts in {len(chunks)} chunks of {args.chunk}, same "
          f"SentenceTransformer, {args.rounds} rounds (paths alternated chunk by chunk)",
          ["path", "median total s", "rounds s", "texts/s", "ratio vs raw (totals)",
           "ratio vs raw (median paired chunk)", "texts encoded", "max |diff| vs raw"], rows)
    print("\nratio = recgen throughput / raw throughput (target >= 0.95); the paired-chunk median is the less "
          "noise-sensitive figure")


def bench_reembed(args, workdir: Path) -> None:
    from recgen.catalog.store import CatalogStore
    from recgen.datasets import make_sample_catalog
    from recgen.encoders.space import MultimodalSpace, SpaceConfig
    from recgen.model import Recgen

    data = make_sample_catalog(workdir / "sample", n_items=args.items, n_users=args.users, seed=args.seed)
    # warm-up outside the timings: imports and weight files are read once per process anyway
    warm = MultimodalSpace(SpaceConfig(device=args.device))
    _ = warm.text_encoder, warm.image_encoder
    del warm

    db = workdir / "reembed.db"
    rows = []
    for run in ("first (empty db)", "second (same db, unchanged data)"):
        t0 = time.perf_counter()
        store = CatalogStore(db)
        result = store.ingest(data)
        t1 = time.perf_counter()
        model = Recgen(space=SpaceConfig(device=args.device)).fit(store)
        t2 = time.perf_counter()
        store.close()
        rows.append([run, f"{t1 - t0:.2f}", f"{t2 - t1:.2f}", f"{t2 - t0:.2f}", model.fit_info["encoded"],
                     f"{result.items_added} added / {result.items_updated} updated / {result.items_unchanged} "
                     f"unchanged; {result.reviews_added} reviews added"])
    first, second = float(rows[0][3]), float(rows[1][3])
    for r in rows:
        r.append(f"{float(r[3]) / first:.3f}")
    table(f"re-ingest + re-embed of an unchanged catalog: sample catalog {len(data.items)} items, "
          f"{len(data.reviews)} reviews, {len(data.interactions)} interactions",
          ["run", "ingest s", "fit s", "total s", 'fit_info["encoded"]', "ingest result", "ratio vs first"], rows)
    print(f"\nsecond / first (ingest + fit): {second / first:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", choices=["sample", "movielens"], default="sample", help="texts to encode")
    ap.add_argument("--movielens-path", type=Path, default=DEFAULT_MOVIELENS)
    ap.add_argument("--n", type=int, default=2000, help="texts to encode (default 2000)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds over all texts; paths alternate chunk by chunk (default 1; 2 for RESULTS.md)")
    ap.add_argument("--chunk", type=int, default=250, help="texts per paired timing (default 250)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--items", type=int, default=240, help="sample catalog items for the re-embed test")
    ap.add_argument("--users", type=int, default=120, help="sample catalog users for the re-embed test")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-reembed", action="store_true")
    args = ap.parse_args()

    import sentence_transformers
    import torch

    print(f"# bench_encode: torch {torch.__version__} ({torch.get_num_threads()} threads), sentence-transformers "
          f"{sentence_transformers.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"# args: { {k: str(v) for k, v in vars(args).items()} }")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recgen-bench-encode-") as tmp:
        workdir = Path(tmp)
        if not args.skip_throughput:
            if args.data == "movielens":
                texts, desc = movielens_texts(args.n, args.movielens_path)
            else:
                texts, desc = sample_texts(args.n, args.seed, workdir)
            print(f"# data: {desc}")
            bench_throughput(args, texts, workdir)
        if not args.skip_reembed:
            bench_reembed(args, workdir)
    print(f"\n# total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
