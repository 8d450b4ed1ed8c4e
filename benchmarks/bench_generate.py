"""Generated content: quality on real data against baselines, and speed, in one run.

Previews (MovieLens posters): cVAE / cGAN vs the baseline "mean poster of the item's first
genre" (computed from training items): FID in the image encoder's feature space and
identifiability (the preview retrieves its own item among 100 by image similarity).

Blurbs (clothing reviews): each item's reviews are split into train / held-out; generators
see only train reviews, held-out reviews of the same item are the references. Grounded and
PETER-style generators vs two baselines (first sentence of the item's description; a random
train review sentence of the item). BLEU-1/4, ROUGE-1/2/L, USR, DIV, FMR, faithfulness.

Speed: previews/s and blurbs/s at batch 1 and 64, training time per epoch.

    .venv/bin/python benchmarks/bench_generate.py --part previews --path ../shared/data/movielens-posters
    .venv/bin/python benchmarks/bench_generate.py --part blurbs --path ../shared/data/clothing-reviews
"""
from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _table(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    return df.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def previews(args) -> None:
    from PIL import Image

    from recgen import CatalogStore, Recgen
    from recgen.catalog import CatalogData
    from recgen.datasets import load_movielens_posters
    from recgen.encoders import EmbeddingCache
    from recgen.encoders.image import load_image
    from recgen.generators import ContentGenerator, GenerationConfig

    tmp = Path(tempfile.mkdtemp(prefix="recgen-bench-gen-"))
    data = load_movielens_posters(args.path)
    store = CatalogStore(args.store or tmp / "store.db")
    store.ingest(data)
    catalog = store.catalog(name="movielens")
    model = Recgen().fit(catalog, cache=EmbeddingCache(store.engine))
    items = catalog.items[catalog.items["image_path"].notna()].reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    test_mask = rng.random(len(items)) < 0.2
    train_ids = set(items.loc[~test_mask, "item_id"])
    train_catalog = CatalogData(items=catalog.items[catalog.items["item_id"].isin(train_ids)],
                                interactions=catalog.interactions[catalog.interactions["item_id"].isin(train_ids)])
    size = args.image_size
    real = np.stack([np.asarray(load_image(p).resize((size, size)), dtype=np.uint8) for p in items["image_path"]])
    real_feats = model.space.image_features([Image.fromarray(x) for x in real])
    test_rows = np.flatnonzero(test_mask)
    test_ids = items.loc[test_mask, "item_id"].tolist()
    # a user who rated each test item (the previews are personalized), else neutral
    first_user = catalog.interactions.groupby("item_id")["user_id"].first()
    users = [first_user.get(i) for i in test_ids]

    rows = []
    genre = items["attributes"].map(lambda a: (a.get("genres") or "none").split(",")[0].strip())
    means = {g: real[(~test_mask) & (genre == g).to_numpy()].astype(np.float32).mean(axis=0)
             for g in genre.unique() if ((~test_mask) & (genre == g).to_numpy()).any()}
    overall = real[~test_mask].astype(np.float32).mean(axis=0)
    base = np.stack([means.get(g, overall) for g in genre[test_mask]]).round().astype(np.uint8)
    base_feats = model.space.image_features([Image.fromarray(x) for x in base])
    rows.append(_metrics("baseline: mean poster of genre", base_feats, real_feats, test_rows, args.seed, None))
    for name in args.generators:
        t = time.perf_counter()
        gen = ContentGenerator(GenerationConfig(image_generator=name, blurb_generator=None, seed=args.seed,
                                                image_overrides={"epochs": args.epochs, "image_size": size,
                                                                 "pairs_per_item": args.pairs_per_item}))
        gen.fit(model, train_catalog, progress=False)
        train_s = time.perf_counter() - t
        out = gen.generate(users, test_ids, seed=args.seed, blurbs=False).images
        feats = model.space.image_features([Image.fromarray(x) for x in out])
        r = _metrics(f"{name} (held-out items, text/vectors only)", feats, real_feats, test_rows, args.seed, train_s / args.epochs)
        rows.append(r)
        speed = []
        for bs in (1, 64):
            n = 64 if bs == 1 else 256
            ids = (test_ids * (n // len(test_ids) + 1))[:n]
            us = (users * (n // len(users) + 1))[:n]
            t = time.perf_counter()
            for s in range(0, n, bs):
                gen.generate(us[s:s + bs], ids[s:s + bs], seed=args.seed, blurbs=False)
            speed.append(n / (time.perf_counter() - t))
        r["previews/s batch1"], r["previews/s batch64"] = speed
        Image.fromarray(np.concatenate([np.concatenate(list(out[:8]), axis=1),
                                        np.concatenate(list(real[test_rows[:8]]), axis=1)], axis=0)).save(
            Path(args.out_dir) / f"previews_{name}.png")
    print(f"MovieLens posters: {len(items)} items with posters, {len(test_rows)} held-out items (never seen by the "
          f"generator), size {size}, epochs {args.epochs}")
    print(_table(rows))


def _metrics(name, feats, real_feats, own_rows, seed, epoch_s):
    from recgen.evaluation.generation import frechet_distance, identifiability

    ident = identifiability(feats, real_feats, own_rows, n_candidates=100, seed=seed)
    return {"system": name, "FID(feature space)": frechet_distance(real_feats, feats),
            "ident top1": ident["top1"], "ident top5": ident["top5"], "chance top5": ident["chance_top5"],
            "train s/epoch": np.nan if epoch_s is None else epoch_s}


_SENT = re.compile(r"(?<=[.!?])\s+")


def _singular(word: str) -> str:
    """Class names are plural ("Dresses", "Knits", "Pants"); reviews mostly use the singular."""
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "pants", "jeans", "shorts")):
        return word[:-1]
    return word


def blurbs(args) -> None:
    from recgen import Recgen
    from recgen.catalog import CatalogData
    from recgen.datasets import load_clothing_reviews
    from recgen.encoders import EmbeddingCache
    from recgen.evaluation.generation import blurb_report
    from recgen.generators import ContentGenerator, GenerationConfig

    data = load_clothing_reviews(args.path)
    reviews = data.reviews.reset_index(drop=True)
    counts = reviews["item_id"].value_counts()
    keep_items = counts[counts >= 4].index[: args.items]
    reviews = reviews[reviews["item_id"].isin(keep_items)]
    reviews = reviews.groupby("item_id", group_keys=False).head(args.max_reviews).reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    held = rng.random(len(reviews)) < 0.25
    train_r, test_r = reviews[~held], reviews[held]
    items = data.items[data.items["item_id"].isin(keep_items)].reset_index(drop=True)
    catalog = CatalogData(items=items, reviews=train_r, name="clothing")
    cache = EmbeddingCache(args.store or str(Path(tempfile.mkdtemp()) / "cache.db"))
    model = Recgen().fit(catalog, cache=cache)
    eval_items = [i for i in items["item_id"] if i in set(test_r["item_id"]) and i in set(train_r["item_id"])]
    refs = [test_r.loc[test_r["item_id"] == i, "text"].tolist() for i in eval_items]
    train_text = train_r.groupby("item_id")["text"].agg(" ".join)
    item_by_id = items.set_index("item_id")
    sources = [f"{item_by_id.at[i, 'title']} {item_by_id.at[i, 'description']} {train_text.get(i, '')}" for i in eval_items]
    feature_word = [_singular(str(item_by_id.at[i, "attributes"].get("class", "")).lower()) or "dress" for i in eval_items]
    rows, examples = [], {}

    def add(name, hyps, fit_s=np.nan, speed=(np.nan, np.nan)):
        rep = blurb_report(hyps, refs, features=feature_word, sources=sources)
        rows.append({"system": name, "BLEU-1": rep["bleu1"], "BLEU-4": rep["bleu4"],
                     "ROUGE-1 F": rep["rouge1_f"], "ROUGE-2 F": rep["rouge2_f"], "ROUGE-L F": rep["rougeL_f"],
                     "USR": rep["usr"], "DIV-2": rep["distinct2"], "FMR": rep.get("fmr", np.nan),
                     "faithful": rep["faithfulness"], "fit s": fit_s, "blurbs/s b1": speed[0], "blurbs/s b64": speed[1]})
        examples[name] = hyps[:3]

    first_desc = [(_SENT.split(str(item_by_id.at[i, "description"]).strip() or str(item_by_id.at[i, "title"]))[0]) for i in eval_items]
    add("baseline: first sentence of description (title when empty)", first_desc)
    rnd = []
    for i in eval_items:
        sents = [s for t in train_r.loc[train_r["item_id"] == i, "text"] for s in _SENT.split(t) if s.strip()]
        rnd.append(sents[rng.integers(len(sents))] if sents else "")
    add("baseline: random train review sentence", rnd)
    for name, overrides in (("grounded", {}), ("peter", {"epochs": args.peter_epochs})):
        t = time.perf_counter()
        gen = ContentGenerator(GenerationConfig(image_generator=None, blurb_generator=name, blurb_overrides=overrides,
                                                seed=args.seed)).fit(model, catalog, progress=False)
        fit_s = time.perf_counter() - t
        out = gen.generate([None] * len(eval_items), eval_items, seed=args.seed, images=False).blurbs
        speed = []
        for bs in (1, 64):
            n = 64 if bs == 1 else 256
            ids = (eval_items * (n // len(eval_items) + 1))[:n]
            t = time.perf_counter()
            for s in range(0, n, bs):
                gen.generate([None] * len(ids[s:s + bs]), ids[s:s + bs], seed=args.seed, images=False)
            speed.append(n / (time.perf_counter() - t))
        add(name, out, fit_s, speed)
    print(f"clothing-reviews: {len(items)} items, {len(train_r)} train reviews, {len(test_r)} held-out reviews "
          f"(references), {len(eval_items)} items evaluated; neutral user (the data has no reviewer ids)")
    print(_table(rows))
    for name, ex in examples.items():
        print(f"\n{name}:")
        for e in ex:
            print(f"  - {e[:200]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["previews", "blurbs"], required=True)
    ap.add_argument("--path", type=Path, required=True)
    ap.add_argument("--store", help="SQLite file reused as the embedding cache across runs")
    ap.add_argument("--generators", nargs="+", default=["cvae", "cgan"])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--pairs-per-item", type=int, default=1, help="previews: (image, user) training pairs per item")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (1 is faster on a shared 2-core machine)")
    ap.add_argument("--items", type=int, default=150, help="blurbs: items with the most reviews")
    ap.add_argument("--max-reviews", type=int, default=20, help="blurbs: reviews per item")
    ap.add_argument("--peter-epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=".", help="where preview sample sheets are written")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    previews(args) if args.part == "previews" else blurbs(args)


if __name__ == "__main__":
    main()
