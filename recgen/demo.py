"""``recgen demo``: ingest -> embed -> index -> profiles -> recommend -> enrich -> evaluate -> HTML report."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recgen._io import atomic_write_json
from recgen.catalog import CatalogData, CatalogStore
from recgen.encoders.cache import EmbeddingCache
from recgen.evaluation import (
    evaluate_rankings, held_out_alignment, leave_last_n_split, popularity_rankings, random_rankings,
)
from recgen.modalities import VECTOR_MODALITIES
from recgen.model import Recgen
from recgen.report import thumbnail_data_uri, write_report
from recgen.workdir import Workdir

log = logging.getLogger(__name__)

@dataclass
class DemoResult:
    """What the demo produced."""

    out_dir: Path
    report_path: Path
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def run_demo(dataset: str = "sample", *, path: str | Path | None = None, out: str | Path = "recgen-demo",
             n_users: int = 6, k: int = 20, seed: int = 0, progress: bool = True, generate: bool = True,
             image_generator: str = "studio", generator_epochs: int | None = None,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the whole slice and write ``out/report.html``.

    Parameters
    ----------
    dataset : str
        A data set of :mod:`recgen.datasets` with interactions: ``"sample"`` (the bundled
        synthetic shop, default) or ``"movielens"`` (MovieLens-100K with posters).
    path : path, optional
        Data folder (required for movielens; for sample, where to write it).
    out : path
        Output folder: SQLite store, saved model, metrics.json and report.html.
    n_users : int
        Users shown in the report.
    k : int
        Cut-off of the ranking metrics.
    seed : int
        Seeds the sample catalog and the evaluation.
    progress : bool
        Progress bars.
    generate : bool
        Train the preview and blurb generators and show their output (the slowest step).
    image_generator : {"studio", "cvae", "cgan"}
        Preview generator (registry name).
    generator_epochs : int, optional
        Epochs of the preview generator's main training (studio: its text-to-image editor,
        20 in the demo; cvae/cgan: 15 in the demo).
    echo : callable
        Where step messages go.
    """
    import recgen.datasets as datasets

    t0 = time.perf_counter()
    if dataset not in datasets.names(with_interactions=True):
        raise ValueError(f"dataset must be one of {list(datasets.names(with_interactions=True))} (the demo ranks "
                         f"interactions); got {dataset!r}")
    work = Workdir(out)
    out = work.root
    out.mkdir(parents=True, exist_ok=True)
    data = datasets.load(dataset, path if path is not None or dataset != "sample" else out / "sample-data", seed)
    echo(f"[1/6] loaded {data}")

    store = CatalogStore(work.store)
    result = store.ingest(data)
    echo(f"[2/6] ingested into {store.url}: {result}")
    if result.report:
        echo(result.report.format(max_rows=10))
    catalog = store.catalog(name=data.name)

    n_test = 2 if dataset == "sample" else 5
    train, test = leave_last_n_split(catalog.interactions, n=n_test)
    held = set(zip(test["user_id"], test["item_id"]))
    reviews = catalog.reviews
    if len(reviews):  # reviews written after a held-out interaction would leak it
        leak = [(u, i) in held for u, i in zip(reviews["user_id"], reviews["item_id"])]
        reviews = reviews.loc[~np.asarray(leak, dtype=bool)]
    train_catalog = CatalogData(items=catalog.items, reviews=reviews, interactions=train, name=data.name)
    cache = EmbeddingCache(store.engine)
    model = Recgen().fit(train_catalog, cache=cache, progress=progress)
    echo(f"[3/6] embedded {model.fit_info['n_items']} items ({model.fit_info['with_image']} with images, "
         f"{model.fit_info['with_reviews']} with reviews; newly encoded: {model.fit_info['encoded']}) "
         f"and profiled {model.fit_info['n_users']} users")
    model_dir = model.save(work.model)

    # --- evaluation -------------------------------------------------------------------
    users = sorted(test["user_id"].unique().tolist())
    ids, _ = model.recommend_batch(users, k=k)
    rankings = {u: [i for i in row if i] for u, row in zip(users, ids)}
    n_items = len(catalog.items)
    rows = []
    for name, ranks in (("recgen (content, fused)", rankings),
                        ("popularity", popularity_rankings(train, users, k)),
                        ("random", random_rankings(catalog.items["item_id"], train, users, k, seed=seed))):
        m = evaluate_rankings(ranks, test, k=k, n_items=n_items)
        rows.append([name] + [f"{m[c]:.3f}" for c in (f"recall@{k}", f"ndcg@{k}", f"hit@{k}", "coverage")])
    metrics: dict[str, Any] = {"ranking": {r[0]: dict(zip([f"recall@{k}", f"ndcg@{k}", f"hit@{k}", "coverage"],
                                                          map(float, r[1:]))) for r in rows}}
    tables = [{"title": f"Ranking on held-out interactions (last {n_test} per user, {len(users)} users)",
               "columns": ["system", f"Recall@{k}", f"NDCG@{k}", f"HitRate@{k}", "coverage"], "rows": rows,
               "note": "Full-catalog ranking, items seen in training masked. recgen here is content-only "
                       "(no collaborative signal): it is meant to enrich a recommender, not replace one."}]

    if data.users is not None and "taste_categories" in data.users.columns:
        tables.append(_taste_table(data, model, metrics))

    align = held_out_alignment(model.space.sibling(), train_catalog, cache=cache, seed=seed)
    rand = held_out_alignment(model.space.sibling(), train_catalog, cache=cache, seed=seed, random_projection=True)
    metrics["alignment"] = {"trained": align.as_dict(), "random_projection": rand.as_dict()}
    tables.append({"title": "Cross-modal alignment: held-out item image -> its own text",
                   "columns": ["projection", "top-1", "top-10", "chance top-1", "chance top-10", "queries", "texts searched"],
                   "rows": [[n, f"{a.top1:.3f}", f"{a.top10:.3f}", f"{a.chance_top1:.4f}", f"{a.chance_top10:.4f}",
                             a.n_queries, a.n_candidates] for n, a in (("trained (20% items held out)", align),
                                                                       ("untrained random", rand))],
                   "note": "The projection is trained on 80% of the items; each held-out image searches the texts of every item."})
    echo(f"[4/6] evaluated: {rows[0][0]} recall@{k}={rows[0][1]} vs popularity {rows[1][1]}, random {rows[2][1]}; "
         f"image->text top-1 {align.top1:.3f} (chance {align.chance_top1:.4f})")

    # --- recommendations + enrichment for a few users ---------------------------------
    shown = _pick_users(users, test, rankings, n_users)
    cand = pd.DataFrame([(u, i, float(rank)) for u in shown for rank, i in enumerate(rankings[u][:8])],
                        columns=["user_id", "item_id", "rank"])
    enriched = model.enrich(cand)
    echo(f"[5/6] enriched {len(enriched)} candidates with {[c for c in enriched.columns if c.startswith('recgen_')]}")
    plots: list[dict] = []
    sheets: list[dict] = []
    text_only: list[dict] = []
    generated: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    if generate:
        generated = _generate(model, train_catalog, shown, cand, image_generator, generator_epochs, seed, progress,
                              out, metrics, tables, plots, echo, sheets, text_only)
    report_users = _report_users(shown, catalog, train, test, enriched, data, generated)
    subtitle = (f"dataset: {data.name} - {n_items} items, {len(catalog.interactions)} interactions, "
                f"{len(catalog.reviews)} reviews - model saved to {model_dir} - {time.perf_counter() - t0:.0f}s")
    report = write_report(work.report, title=f"recgen demo: {data.name}", subtitle=subtitle,
                          tables=tables, users=report_users, plots=plots, sheets=sheets, text_only=text_only)
    atomic_write_json(work.metrics, metrics)
    echo(f"[6/6] report: {report.resolve()}")
    store.close()
    return DemoResult(out_dir=out, report_path=report, model_dir=model_dir, metrics=metrics)


def _taste_table(data: CatalogData, model: Recgen, metrics: dict) -> dict:
    """Share of top-10 recommendations matching the user's *true* latent taste (sample catalog only)."""
    attrs = {i: a for i, a in zip(data.items["item_id"], data.items["attributes"])}
    users = data.users.set_index("user_id")
    known = [u for u in users.index if u in model.profiles]
    ids, _ = model.recommend_batch(known, k=10)
    match, base = [], []
    for u, row in zip(known, ids):
        cats, cols = set(users.at[u, "taste_categories"]), set(users.at[u, "taste_colours"])
        ok = [attrs[i]["category"] in cats or attrs[i]["colour"] in cols for i in row if i]
        match.append(np.mean(ok))
        base.append(np.mean([a["category"] in cats or a["colour"] in cols for a in attrs.values()]))
    metrics["taste_match@10"] = {"recgen": float(np.mean(match)), "chance": float(np.mean(base))}
    return {"title": "Recovered tastes (sample catalog ground truth)",
            "columns": ["", "share of top-10 matching a true taste (category or colour)"],
            "rows": [["recgen profiles", f"{np.mean(match):.3f}"], ["random items (chance)", f"{np.mean(base):.3f}"]],
            "note": f"{len(known)} users; tastes are the generator's latent preferences, never shown to recgen."}


def _pick_users(users: list[str], test: pd.DataFrame, rankings: dict, n: int) -> list[str]:
    truth = test.groupby("user_id")["item_id"].agg(set)
    hits = [u for u in users if set(rankings[u][:8]) & truth.get(u, set())]
    rest = [u for u in users if u not in hits]
    return (hits[: (n + 1) // 2] + rest)[:n]


def _demo_epochs(image_generator: str, epochs: int | None) -> int:
    """Demo-sized training (about a minute on 2 CPU cores): 20 editor epochs (studio), 15 (cvae/cgan)."""
    return epochs if epochs is not None else (20 if image_generator == "studio" else 15)


def _blurb_rows(bm: dict) -> list[list[str]]:
    """The blurb metrics of :func:`~recgen.evaluation.content.blurb_metrics` as readable report rows."""
    rows = [["faithfulness: share of each blurb's content words found in the item's own text and reviews "
             "(and the history item it names)", f"{bm['faithfulness']:.3f} ({bm['faithful_all']:.0%} of blurbs "
                                                 "wholly supported)"]]
    if "faithfulness_cited" in bm:
        rows.append(["faithfulness against only the sources each blurb cites", f"{bm['faithfulness_cited']:.3f}"])
        rows.append(["blurbs that name an item from the user's own history", f"{bm['names_history_item']:.0%}"])
    if "personalization_swap" in bm:
        p = bm["personalization_swap"]
        rows.append(["personalization (swap test): a user's and a contrasting user's blurbs of the same item are "
                     "each closer to their own user's history than swapped (TF-IDF words; chance 0.5)",
                     f"{p['win_rate']:.3f} [{p['ci_low']:.3f}, {p['ci_high']:.3f}] (95% bootstrap CI, {p['n']} pairs)"])
    rows.append(["diversity: distinct-1 / distinct-2 words across blurbs; share of unique blurbs",
                 f"{bm['distinct1']:.3f} / {bm['distinct2']:.3f}; {bm['usr']:.0%}"])
    return rows


def _contrasting(model, users: list[str]) -> dict[str, str]:
    """For each user, the profiled user whose taste is least like theirs (cosine of fused taste vectors)."""
    ids = [str(u) for u in model.profiles.user_ids_]
    vecs = model.profiles.vectors_["fused"].astype(np.float32)
    unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
    rows = model.profiles.rows(users)
    out = {}
    for u, r in zip(users, rows):
        if r >= 0:
            out[u] = ids[int(np.argmin(unit @ unit[r]))]
    return out


def _hide_photos(catalog: CatalogData, avoid: set, share: float, seed: int) -> tuple[CatalogData, list[str]]:
    """A copy of ``catalog`` with ``share`` of the photographed items' photos removed (never those in ``avoid``)."""
    items = catalog.items.copy()
    has = items["image_path"].map(lambda p: isinstance(p, str) and bool(p)) & ~items["item_id"].isin(avoid)
    pool = items.index[has]
    n = int(round(share * len(pool)))
    hidden = np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False) if n else []
    items.loc[hidden, "image_path"] = None
    return (CatalogData(items=items, reviews=catalog.reviews, interactions=catalog.interactions, name=catalog.name),
            items.loc[hidden, "item_id"].astype(str).tolist())


def _generate(model, catalog: CatalogData, shown, cand: pd.DataFrame, image_generator: str, epochs, seed: int,
              progress: bool, out: Path, metrics: dict, tables: list, plots: list, echo,
              sheets: list, text_only: list) -> dict:
    """Train previews + blurbs, judge them, fill ``sheets`` / ``text_only``; return {(user, item): (preview, blurb)}.

    A share of the items have their photo hidden from the generators: their previews are made
    from text (and marked as generated), and the report shows them next to the hidden photo.
    """
    from recgen.encoders.image import load_image
    from recgen.evaluation.content import blurb_metrics
    from recgen.evaluation.judges import AttributeJudge
    from recgen.evaluation.previews import judge_previews
    from recgen.generators import ContentGenerator, GenerationCache, GenerationConfig
    from recgen.generators.registry import quick_overrides
    from recgen.report import array_data_uri, bar_plot_svg, line_plot_svg

    gen_catalog, hidden = _hide_photos(catalog, set(cand["item_id"]), 0.1, seed)
    t = time.perf_counter()
    gen = ContentGenerator(GenerationConfig(image_generator=image_generator, blurb_generator="grounded",
                                            image_overrides=quick_overrides(image_generator, _demo_epochs(image_generator, epochs)),
                                            seed=seed)
                           ).fit(model, gen_catalog, progress=progress)
    train_s = time.perf_counter() - t
    gen.save(Workdir(out).generators)
    cache = GenerationCache(Workdir(out).store)
    pairs = list(zip(cand["user_id"], cand["item_id"]))
    res = gen.generate([u for u, _ in pairs], [i for _, i in pairs], seed=seed, cache=cache)
    echo(f"[gen] trained {image_generator} + grounded blurbs in {train_s:.0f}s ({len(hidden)} items' photos hidden "
         f"from the generators); generated {len(pairs)} previews and blurbs")

    # --- independent judges: real photos only, never seen by a generator -------------------
    items = catalog.items.assign(item_id=catalog.items["item_id"].astype(str))
    items = items[items["image_path"].map(lambda p: isinstance(p, str) and bool(p))].reset_index(drop=True)
    size = gen.image_gen.config.image_size
    real = np.stack([np.asarray(load_image(p).resize((size, size))) for p in items["image_path"]])
    row_of = {i: r for r, i in enumerate(items["item_id"])}
    attrs = None
    judge = page_judge = None
    if "attributes" in items and items["attributes"].map(lambda a: isinstance(a, dict) and "category" in a).all():
        names = [a for a in ("category", "colour", "pattern") if all(a in d for d in items["attributes"])]
        attrs = {a: items["attributes"].map(lambda d: str(d[a])).tolist() for a in names}
        judge = AttributeJudge(tuple(names), seed=seed).fit(real, attrs)
        # also trained on page-like copies of the photos (a second photo in a corner, a light backdrop):
        # the strict judge reads a real product on a tinted backdrop as a different product
        page_judge = AttributeJudge.for_pages(tuple(names), seed=seed).fit(real, attrs)
    users = [str(u) for u in model.profiles.user_ids_][:200]
    top, _ = model.recommend_batch(users, k=5)
    hidden_set = set(hidden)
    photo_pairs = [(u, next((i for i in row if i in row_of and i not in hidden_set), None)) for u, row in zip(users, top)]
    photo_pairs = [(u, i) for u, i in photo_pairs if i]
    contrast = _contrasting(model, [u for u, _ in photo_pairs])
    photo_pairs = [(u, i) for u, i in photo_pairs if u in contrast]
    hist = catalog.interactions.assign(item_id=catalog.interactions["item_id"].astype(str),
                                       user_id=catalog.interactions["user_id"].astype(str))
    hist = hist.sort_values("timestamp").groupby("user_id")["item_id"].agg(list)

    def judged(pairs_, mode_items):
        us, its = [u for u, _ in pairs_], [i for _, i in pairs_]
        personal = gen.generate(us, its, seed=seed, blurbs=False).images
        neutral = gen.generate([None] * len(its), its, seed=seed, blurbs=False).images
        other = gen.generate([contrast.get(u) for u in us], its, seed=seed, blurbs=False).images
        histories = [real[[row_of[h] for h in hist.get(u, [])[-20:] if h in row_of]] for u in us]
        labels = {a: [v[row_of[i]] for i in its] for a, v in attrs.items()} if attrs else None
        m = judge_previews(personal, [row_of[i] for i in its], real, neutral=neutral, contrast=other,
                           histories=histories, judge=judge, labels=labels, seed=seed)
        if page_judge is not None:
            m["attributes_page"] = page_judge.accuracy(personal, labels)
        return m

    pm = judged(photo_pairs, None)
    text_pairs = [(users[j % len(users)], i) for j, i in enumerate(hidden) if i in row_of]
    tm = judged(text_pairs, None) if len(text_pairs) >= 2 else None
    eval_pairs = [(u, i) for u, i in photo_pairs]
    bm = blurb_metrics(gen, catalog, eval_pairs, seed=seed, contrast=contrast)
    metrics["previews"] = {"with_photo": _jsonable(pm), "text_only": _jsonable(tm), "train_seconds": train_s,
                           "hidden_items": hidden}
    metrics["blurbs"] = _jsonable(bm)

    def rows_of(m):
        if m is None:
            return []
        ident = m["identifiability"]
        r = [[f"identifiability top-1 / top-5 among {ident.get('n_candidates', 100)} real photos",
              f"{ident['top1']:.3f} / {ident['top5']:.3f} (chance {ident['chance_top1']:.3f} / {ident['chance_top5']:.3f})"],
             ["sharpness (Laplacian variance) preview / real photo", f"{m['sharpness_ratio']:.2f}"],
             ["FID to real photos (independent pixel features)", f"{m['fid']:.3f}"]]
        if "attributes" in m:
            r.append(["attribute accuracy (judge trained on real photos): " + ", ".join(m["attributes"]),
                      " / ".join(f"{v:.3f}" for v in m["attributes"].values())])
        if "attributes_page" in m:
            r.append(["the same, by a judge also trained on the photos as a page shows them (beside a second "
                      "photo, on a light backdrop)", " / ".join(f"{v:.3f}" for v in m["attributes_page"].values())])
        if "personalization_presentation" in m:
            p = m["personalization_presentation"]
            r.append(["personalization: hue of what changed for the user (backdrop, card) vs the neutral preview, "
                      "closer to the colours of the user's history",
                      f"{p['mean_diff']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] (95% bootstrap CI)"])
        if "personalization" in m:
            p = m["personalization"]
            r.append(["whole-picture features closer to the user's history than the neutral preview's (mostly "
                      "background: the neutral preview is on white, as the history photos are)",
                      f"{p['mean_diff']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] (95% bootstrap CI)"])
        if "visible_difference" in m:
            v = m["visible_difference"]
            r.append(["contrasting users' previews of the same item differ visibly",
                      f"{v['share']:.0%} of pairs (mean abs. pixel difference > {v['threshold']})"])
        return r

    judge_note = (f"Judges never seen by the generators: pixel-only features (colour layout, HSV histogram, "
                  f"gradient orientations) and, where the catalog has attributes, classifiers trained only on the real "
                  f"photos that also read texture from local binary patterns (cross-validated accuracy on photos: "
                  f"{', '.join(f'{k} {v:.2f}' for k, v in judge.cv_accuracy_.items()) if judge else 'n/a'}).")
    tables.append({"title": f"Previews of items with a photo ({image_generator}, {pm['n']} users' top items)",
                   "columns": ["metric", "value"], "rows": rows_of(pm), "note": judge_note})
    if tm is not None:
        tables.append({"title": f"Previews of items without a photo ({len(text_pairs)} items whose photo was hidden)",
                       "columns": ["metric", "value"], "rows": rows_of(tm),
                       "note": "Made from the item's text only, judged against the hidden photo."})
    tables.append({"title": f"Blurbs (grounded generator, {bm['n']} users' top items)", "columns": ["metric", "value"],
                   "rows": _blurb_rows(bm),
                   "note": "ROUGE-L / BLEU need held-out reviews and are not measured here: benchmarks/bench_blurbs.py "
                           "measures them next to the PETER-style neural generator and two baselines (figures in "
                           "benchmarks/RESULTS.md)."})
    hist_losses = gen.image_gen.history
    if any(hist_losses.values()):
        plots.append({"title": f"{image_generator} training losses",
                      "svg": line_plot_svg({k: v for k, v in hist_losses.items() if v})})
    if "attributes" in pm:
        bars = {}
        for job, m in (("with photo", pm), ("text only", tm)):
            for judge_name, key in (("strict", "attributes"), ("page", "attributes_page")):
                bars.update({f"{job}, {judge_name}: {k}": v for k, v in ((m or {}).get(key) or {}).items()})
        plots.append({"title": "Attribute accuracy of previews (strict judge: trained on the real photos; page "
                               "judge: also on them beside a second photo, on a light backdrop)",
                      "svg": bar_plot_svg(bars, vmax=1.0)})

    # --- what a person looks at: contact sheets ------------------------------------------
    titles = dict(zip(items["item_id"], items["title"].astype(str)))
    for u in shown[:4]:
        item = next((i for uu, i in pairs if uu == u and i in row_of and i not in hidden_set), None)
        v = _contrasting(model, [u]).get(u)
        if item is None or v is None:
            continue
        both = gen.generate([None, u, v], [item] * 3, seed=seed)
        sheets.append({"user_id": u, "other": v, "title": titles.get(item, item), "item_id": item,
                       "cells": [("real photo", array_data_uri(real[row_of[item]]), ""),
                                 ("neutral preview", array_data_uri(both.images[0]), ""),
                                 (f"for {u}", array_data_uri(both.images[1]), _anchor_note(both, 1, titles)),
                                 (f"for {v} (contrasting taste)", array_data_uri(both.images[2]),
                                  _anchor_note(both, 2, titles))],
                       "blurbs": [(u, both.blurbs[1]), (v, both.blurbs[2])]})
    shown_user = shown[0] if shown else None
    for i in hidden[:8]:
        if i not in row_of:
            continue
        g = gen.generate([None, shown_user], [i, i], seed=seed, blurbs=False)
        text_only.append({"item_id": i, "title": titles.get(i, i), "real": array_data_uri(real[row_of[i]]),
                          "neutral": array_data_uri(g.images[0]), "personal": array_data_uri(g.images[1]),
                          "user_id": shown_user or ""})
    return {(u, i): (array_data_uri(res.images[j]), res.blurbs[j]) for j, (u, i) in enumerate(pairs)}


def _anchor_note(out, row: int, titles: dict) -> str:
    """The caption of a personal preview: the history item its card shows, or why it shows none."""
    shown = out.shown[row]
    if shown:
        return f"beside: {titles.get(shown, shown)} (from their history)"
    if out.anchors[row]:
        return "no card: the product leaves no corner free"
    return "no history item shown"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _report_users(shown, catalog: CatalogData, train, test, enriched: pd.DataFrame, data: CatalogData,
                  generated: dict | None = None) -> list[dict]:
    items = catalog.items.set_index("item_id")
    truth = test.groupby("user_id")["item_id"].agg(set)
    thumbs: dict[str, str | None] = {}

    def card(item_id: str, features=(), hit=False) -> dict:
        if item_id not in thumbs:
            thumbs[item_id] = thumbnail_data_uri(items.at[item_id, "image_path"]) if item_id in items.index else None
        title = str(items.at[item_id, "title"]) if item_id in items.index else item_id
        return {"item_id": item_id, "title": title, "img": thumbs[item_id], "features": list(features), "hit": hit}

    out = []
    for u in shown:
        hist = train[train["user_id"] == u].sort_values("timestamp", ascending=False)["item_id"].head(8)
        recs = enriched[enriched["user_id"] == u]
        cards = []
        for _, r in recs.iterrows():
            feats = [(m, "-" if pd.isna(r[f"recgen_sim_{m}"]) else f"{r[f'recgen_sim_{m}']:.3f}")
                     for m in VECTOR_MODALITIES]
            c = card(r["item_id"], feats, hit=r["item_id"] in truth.get(u, set()))
            c["preview"], c["blurb"] = (generated or {}).get((u, r["item_id"]), (None, None))
            cards.append(c)
        note = ""
        if data.users is not None and "taste_categories" in data.users.columns:
            row = data.users.set_index("user_id").loc[u]
            note = f"true taste: categories {', '.join(row['taste_categories'])}; colours {', '.join(row['taste_colours'])}"
        out.append({"user_id": u, "note": note, "history": [card(i) for i in hist], "recs": cards})
    return out
