"""Generated content: quality on real data against baselines, and speed, in one run.

Previews (the sample shop, or MovieLens posters): the studio generator on held-out items whose
photos it never saw in training, judged by judges it never sees (recgen.evaluation.judges:
pixel-only features and, on the sample shop, attribute classifiers trained on the real photos
only). Text-only job: previews from the held-out items' text, against the retrieved exemplar
as is (ablation) and, on MovieLens, the mean poster of the item's first genre (baseline).
With-photo job: the same items with their photo added after training (no retraining).
Identifiability among 100 real photos, FID in the pixel-feature space, sharpness ratio,
attribute accuracy, personalization shift (bootstrap CI) and contrasting users' visible
difference; previews/s at batch 64.

Blurbs (clothing reviews): each item's reviews are split into train / held-out; generators
see only train reviews, held-out reviews of the same item are the references. Grounded and
PETER-style generators vs two baselines (first sentence of the item's description; a random
train review sentence of the item). BLEU-1/4, ROUGE-1/2/L, USR, DIV, FMR, faithfulness.

Speed: previews/s and blurbs/s at batch 1 and 64, training time per epoch.

    .venv/bin/python benchmarks/bench_generate.py --part previews --dataset sample --threads 1
    .venv/bin/python benchmarks/bench_generate.py --part previews --path ../shared/data/movielens-posters --threads 1
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
    """Studio previews judged independently: with-photo and text-only jobs, on held-out items."""
    from PIL import Image

    import recgen.datasets as datasets
    from recgen import CatalogStore, Recgen
    from recgen.catalog import CatalogData
    from recgen.demo import _contrasting
    from recgen.encoders import EmbeddingCache
    from recgen.encoders.image import load_image
    from recgen.evaluation.judges import AttributeJudge, light_backdrops
    from recgen.evaluation.previews import judge_previews
    from recgen.generators import GenerationContext, make_generator

    tmp = Path(tempfile.mkdtemp(prefix="recgen-bench-gen-"))
    data = datasets.load(args.dataset, args.path if args.dataset != "sample" else tmp / "sample", args.seed)
    store = CatalogStore(args.store or tmp / "store.db")
    store.ingest(data)
    catalog = store.catalog(name=args.dataset)
    t = time.perf_counter()
    model = Recgen().fit(catalog, cache=EmbeddingCache(store.engine))
    print(f"model fitted in {time.perf_counter() - t:.0f}s")
    items = catalog.items.assign(item_id=catalog.items["item_id"].astype(str))
    items = items[items["image_path"].map(lambda p: isinstance(p, str) and bool(p))].reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    test_mask = rng.random(len(items)) < 0.2
    test_ids = items.loc[test_mask, "item_id"].tolist()
    size = args.image_size
    real = np.stack([np.asarray(load_image(p).resize((size, size)), dtype=np.uint8) for p in items["image_path"]])
    row_of = {i: r for r, i in enumerate(items["item_id"])}
    attrs = items["attributes"].tolist()
    judge = page_judge = labels_of = None
    names = [a for a in ("category", "colour", "pattern") if all(isinstance(d, dict) and a in d for d in attrs)]
    if names:
        labels_of = {a: [str(d[a]) for d in attrs] for a in names}
        judge = AttributeJudge(tuple(names), seed=args.seed).fit(real, labels_of)
        # the same judge also trained on page-like copies of the photos (a smaller second photo in a
        # corner, a light backdrop): it reads the main product on a page or a personal preview
        page_judge = AttributeJudge.for_pages(tuple(names), seed=args.seed).fit(real, labels_of)
        print("judge cross-validated accuracy on real photos:", judge.cv_accuracy_)
    hidden = catalog.items.assign(item_id=catalog.items["item_id"].astype(str))
    hidden.loc[hidden["item_id"].isin(test_ids), "image_path"] = None
    gen_catalog = CatalogData(items=hidden, reviews=catalog.reviews, interactions=catalog.interactions)
    overrides = {"image_size": size, "editor_epochs": args.epochs, **dict(args.studio)}
    t = time.perf_counter()
    gen = make_generator("studio", seed=args.seed, **overrides).fit(GenerationContext(model, gen_catalog))
    fit_s = time.perf_counter() - t
    print(f"studio fitted in {fit_s:.0f}s; items without a photo get text_previews={gen.text_style!r}; colour model "
          f"(text -> main colour) cross-validated accuracy {float(gen._lib.colour_cv):.2f} over "
          f"{gen._lib.colour_centres.shape[0]} colour clusters")
    ctx = GenerationContext(model)
    inter = catalog.interactions.assign(item_id=catalog.interactions["item_id"].astype(str),
                                        user_id=catalog.interactions["user_id"].astype(str)).sort_values("timestamp")
    first_user = inter.groupby("item_id")["user_id"].first()
    hist = inter.groupby("user_id")["item_id"].agg(list)
    # a user who interacted with the item; items nobody interacted with (cold start) get a
    # random user who has a history, so every pair is a personal one
    pool = sorted(set(inter["user_id"]))
    pick = np.random.default_rng(args.seed + 1)
    users = [first_user.get(i) or str(pool[pick.integers(len(pool))]) for i in test_ids]
    contrast = _contrasting(model, [u for u in users if u])
    others = [contrast.get(u) if u else None for u in users]
    rows_t = [row_of[i] for i in test_ids]
    histories = [real[[row_of[h] for h in hist.get(u, [])[-20:] if h in row_of and h != i]] if u else real[:0]
                 for u, i in zip(users, test_ids)]
    labels = {a: [v[r] for r in rows_t] for a, v in labels_of.items()} if labels_of else None

    def judged(mode, g=gen):
        p = g.generate(ctx, test_ids, users, seed=args.seed, mode=mode).images
        n = g.generate(ctx, test_ids, [None] * len(test_ids), seed=args.seed, mode=mode).images
        o = g.generate(ctx, test_ids, others, seed=args.seed, mode=mode).images
        return p, judge_previews(p, rows_t, real, neutral=n, contrast=o, histories=histories, judge=judge,
                                 labels=labels, localize=True, seed=args.seed), n, o

    results = {}
    # text-only: the held-out items' photos were never seen; previews come from their text
    text_p, results["studio, text only (held-out items, no photo)"], text_n, _ = judged("text")
    results["studio, text only: neutral previews (no history card)"] = judge_previews(
        text_n, rows_t, real, judge=judge, labels=labels, localize=True, seed=args.seed)
    unmarked = replace_config(gen, mark_generated=False)
    _, results["studio, text only, judged before the 'generated' mark"], _, _ = judged("text", unmarked)
    if gen.text_style == "exemplar":  # ablation: the colour step alone, without the cGAN editor's refinement
        no_refine = replace_config(gen, fresh_caches=True)
        no_refine._nets = {**gen._nets, "editor": _Unchanged()}
        _, results["ablation: text only, colour step without the editor's refinement"], _, _ = judged("text", no_refine)
    # with photo: the held-out items' photos added after training (no retraining)
    gen.add_photos(ctx, test_ids, items.loc[test_mask, "image_path"].tolist())
    photo_p, results["studio, with photo (held-out items, photo added after fit)"], photo_n, photo_o = judged("photo")
    results["studio, with photo: neutral previews (no history card)"] = judge_previews(
        photo_n, rows_t, real, judge=judge, labels=labels, localize=True, seed=args.seed)
    no_card = replace_config(gen, inset=False)
    _, results["studio, with photo, backdrop only (inset=False)"], _, _ = judged("photo", no_card)
    before = replace_config(gen, backdrop="mood", shrink_for_card=True)
    before_p, results["ablation: with photo, mood cVAE backdrop, product shrinks for the card"], _, _ = judged(
        "photo", before)
    if page_judge is not None:
        def both(images):
            return "strict " + _accuracies(judge, images, labels) + ", page " + _accuracies(page_judge, images, labels)

        print("attribute accuracy (category / colour / pattern) by the strict judge and by the page judge (also "
              "trained with a second photo in a corner and on light backdrops):")
        print("  real photos of the held-out items (held out from the generator; the judges trained on every "
              "real photo, their own error is the cross-validated accuracy above):", both(real[rows_t]))
        print("  the same photos on random light backdrops (no generator):",
              both(light_backdrops(real[rows_t], seed=args.seed + 100)))
        print("  with-photo personal previews:", both(photo_p))
        print("  with-photo personal previews, mood cVAE backdrop and the product shrinking for the card:",
              both(before_p))
        print("  text-only personal previews:", both(text_p))
    # baselines for the text-only job
    tv = ctx.item_vectors(ctx.item_rows(test_ids), "text")
    if gen.text_style == "exemplar":
        ex, what = gen._retrieve(tv, test_ids)[:, 0], "ablation: retrieved exemplar photo, not edited"
    else:  # covers retrieve nothing: the picture of the item whose text is nearest (never the item itself)
        from recgen.encoders.base import l2_normalize

        sim = l2_normalize(tv) @ l2_normalize(gen._lib.text.numpy()).T
        sim[[j for j, i in enumerate(test_ids) if i in gen._row], [gen._row[i] for i in test_ids if i in gen._row]] = -2
        ex, what = sim.argmax(1), "ablation: picture of the text-nearest item, not edited"
    ex_rows = [row_of.get(gen.ids[e]) for e in ex]
    results[what] = judge_previews(
        real[[r for r in ex_rows]], rows_t, real, judge=judge, labels=labels, localize=True, seed=args.seed)
    if args.dataset == "movielens":
        genre = items["attributes"].map(lambda a: (a.get("genres") or "none").split(",")[0].strip())
        train = ~test_mask
        means = {g: real[train & (genre == g).to_numpy()].astype(np.float32).mean(axis=0)
                 for g in genre.unique() if (train & (genre == g).to_numpy()).any()}
        overall = real[train].astype(np.float32).mean(axis=0)
        base = np.stack([means.get(g, overall) for g in genre[test_mask]]).round().astype(np.uint8)
        results["baseline: mean poster of the item's first genre"] = judge_previews(base, rows_t, real, localize=True,
                                                                                  seed=args.seed)
        text_bound(ctx, items, test_mask, real, rows_t, args.seed)
    table = []
    for name, m in results.items():
        row = {"system": name, "n": m["n"], "ident top1": m["identifiability"]["top1"],
               "ident top5": m["identifiability"]["top5"],
               "ident top1 / top5 localized": "{top1:.3f} / {top5:.3f}".format(**m["identifiability_localized"])
               if "identifiability_localized" in m else "-", "FID (pixel feats)": m["fid"],
               "sharpness ratio": m["sharpness_ratio"]}
        for a, v in (m.get("attributes") or {}).items():
            row[f"acc {a}"] = v
        if "personalization" in m:
            pz = m["personalization"]
            row["personal shift [95% CI]"] = f"{pz['mean_diff']:+.4f} [{pz['ci_low']:+.4f}, {pz['ci_high']:+.4f}]"
            pp = m["personalization_presentation"]
            row["presentation hue shift [95% CI]"] = f"{pp['mean_diff']:+.4f} [{pp['ci_low']:+.4f}, {pp['ci_high']:+.4f}]"
        if "visible_difference" in m:
            row["contrasting pairs visibly different"] = m["visible_difference"]["share"]
        table.append(row)
    speed = {}
    every = gen.ids  # every photographed item, so the first pass fills the scaled-photo cache
    pick = np.random.default_rng(args.seed)
    ids = [str(i) for i in pick.choice(every, 512)]
    us = [str(u) for u in pick.choice(pool, 512)]
    gen._sized_cache.clear()
    gen._text_cache.clear()
    for mode in ("photo", "photo (cached)", "text", "text (cached)"):
        t = time.perf_counter()
        for s0 in range(0, len(ids), 64):
            gen.generate(ctx, ids[s0:s0 + 64], us[s0:s0 + 64], seed=args.seed, mode=mode.split()[0])
        speed[mode] = len(ids) / (time.perf_counter() - t)
    print(f"{args.dataset}: {len(items)} items with photos, {len(test_ids)} held out (photos never seen in training); "
          f"{size}px; studio fit {fit_s:.0f}s (editor {args.epochs} epochs); "
          f"previews/s at batch 64 (512 random pairs): with photo {speed['photo']:.0f} (first pass), "
          f"{speed['photo (cached)']:.0f} (scaled photos cached), text only {speed['text']:.0f} (first pass: each "
          f"item's product generated once), {speed['text (cached)']:.0f} (cached)")
    print(_table(table))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = min(8, len(test_ids))
    sheet = np.concatenate([np.concatenate(list(x[:k]), axis=1) for x in
                            (real[rows_t], photo_n, photo_p, photo_o, text_n, text_p)], axis=0)
    Image.fromarray(sheet).save(out / f"previews_{args.dataset}.png")
    print(f"sheet (rows: real | neutral | user | contrasting user | text-only neutral | text-only user): "
          f"{out / f'previews_{args.dataset}.png'}")


def text_bound(ctx, items, test_mask, real, rows_t, seed) -> None:
    """How much of a poster's look its text predicts, in the judge's own feature space (analysis only).

    A ridge map from the item's text vector to the independent features of its real poster is
    fitted on the training items; the *predicted features* of the held-out items are then
    identified among 100 directly, with no image made. No generator conditioned on that text
    vector through a linear map can beat this by matching the features better than the map
    predicts them; a near-chance figure says the text does not carry the poster's look.
    """
    from recgen.evaluation.generation import identifiability
    from recgen.evaluation.judges import independent_features

    feats = independent_features(real)
    x = ctx.item_vectors(ctx.item_rows(items["item_id"].tolist()), "text").astype(np.float64)
    x = np.concatenate([x, np.ones((len(x), 1))], 1)
    train = np.flatnonzero(~test_mask)
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
    y = (feats - mu) / sd
    rows = np.asarray(rows_t)
    for alpha in (1.0, 10.0, 100.0):
        reg = alpha * np.eye(x.shape[1])
        reg[-1, -1] = 0.0
        w = np.linalg.solve(x[train].T @ x[train] + reg, x[train].T @ y[train])
        pred = x[rows] @ w
        r2 = 1.0 - float(((pred - y[rows]) ** 2).sum() / ((y[rows] - y[train].mean(0)) ** 2).sum())
        ident = identifiability((pred * sd + mu).astype(np.float32), feats, rows, n_candidates=100, seed=seed)
        print(f"bound: judge features of the poster predicted from the text vector (ridge alpha {alpha:g}): "
              f"held-out R^2 {r2:+.3f}, identifiability of the predicted features top-1 {ident['top1']:.3f} "
              f"top-5 {ident['top5']:.3f} (chance {ident['chance_top5']:.2f})")


def _setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` with VALUE read as JSON where it parses (numbers, true/false), else as text."""
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _accuracies(judge, images, labels) -> str:
    """A judge's accuracy per attribute, as 'a / b / c'."""
    return " / ".join(f"{v:.3f}" for v in judge.accuracy(images, labels).values())


def replace_config(gen, fresh_caches=False, **changes):
    """A shallow copy of a generator with some config fields changed (the networks are shared)."""
    import copy
    from dataclasses import replace

    other = copy.copy(gen)
    other.config = replace(gen.config, **changes)
    if fresh_caches or changes:  # cached products and layouts may depend on what changed
        other._fresh_caches()
    return other


class _Unchanged:
    """Stands in for the studio's editor: returns its input (the ablation without refinement)."""

    def __call__(self, x, cond):
        return x

    def eval(self):
        return self


def _metrics(name, feats, real_feats, own_rows, seed, epoch_s):
    from recgen.evaluation.generation import frechet_distance, identifiability

    ident = identifiability(feats, real_feats, own_rows, n_candidates=100, seed=seed)
    return {"system": name, "FID(feature space)": frechet_distance(real_feats, feats),
            "ident top1": ident["top1"], "ident top5": ident["top5"], "chance top5": ident["chance_top5"],
            "train s/epoch": np.nan if epoch_s is None else epoch_s}


_SENT = re.compile(r"(?<=[.!?])\s+")


def blurbs(args) -> None:
    from recgen import Recgen
    from recgen.encoders import EmbeddingCache
    from recgen.evaluation.generation import blurb_report
    from recgen.generators import ContentGenerator, GenerationConfig

    from _clothing import clothing_split

    split = clothing_split(args.path, items=args.items, max_reviews=args.max_reviews, seed=args.seed)
    items, train_r, test_r, catalog = split.items, split.train, split.test, split.catalog
    eval_items, refs, rng = split.eval_items, split.refs, split.rng
    cache = EmbeddingCache(args.store or str(Path(tempfile.mkdtemp()) / "cache.db"))
    model = Recgen().fit(catalog, cache=cache)
    train_text = train_r.groupby("item_id")["text"].agg(" ".join)
    item_by_id = items.set_index("item_id")
    sources = [f"{item_by_id.at[i, 'title']} {item_by_id.at[i, 'description']} {train_text.get(i, '')}" for i in eval_items]
    feature_word = split.features
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
    ap.add_argument("--path", type=Path, help="data folder (movielens posters, clothing reviews)")
    ap.add_argument("--dataset", choices=["sample", "movielens"], default="movielens", help="previews: data set")
    ap.add_argument("--store", help="SQLite file reused as the embedding cache across runs")
    ap.add_argument("--generators", nargs="+", default=["cvae", "cgan"])
    ap.add_argument("--epochs", type=int, default=30, help="previews: epochs of the studio's text-to-image editor")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--pairs-per-item", type=int, default=1, help="previews: (image, user) training pairs per item")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (1 is faster on a shared 2-core machine)")
    ap.add_argument("--items", type=int, default=150, help="blurbs: items with the most reviews")
    ap.add_argument("--max-reviews", type=int, default=20, help="blurbs: reviews per item")
    ap.add_argument("--peter-epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--studio", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                    help="previews: a StudioConfig setting (repeatable), e.g. --studio backdrop=mood")
    ap.add_argument("--out-dir", default=".", help="where preview sample sheets are written")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    previews(args) if args.part == "previews" else blurbs(args)


if __name__ == "__main__":
    main()
