"""``recgen evaluate CONFIG``: variants declared in a TOML file, one report (HTML, JSON, CSV).

Example config (every key but ``[[variants]]`` has a default)::

    [data]
    dataset = "sample"            # a recgen.datasets name with interactions ("sample", "movielens": needs path)
                                  # or "files"
    # path = "../shared/data/movielens-posters"
    # items = "items.csv"; interactions = "events.parquet"; reviews = "reviews.csv"   (dataset = "files")
    # store = "cache/ml.db"       # SQLite store of THIS dataset only, reused as the embedding cache
                                  # (default: one per dataset/seed under OUT)

    [split]
    kind = "global_time"          # "global_time" (default), "leave_last_n", "random"
    test_fraction = 0.1
    val_fraction = 0.1            # used by variants that learn a combiner (als+recgen)

    [evaluation]
    k = 20
    seed = 0
    n_boot = 2000
    baseline = "ALS"              # default: the first variant
    short_history = 5
    examples = 4                  # users shown with their recommendations in the HTML
    generate = false              # true: train preview + blurb generators and show them on the examples
    generator_epochs = 8

    [[variants]]
    name = "popularity"
    kind = "popularity"

    [[variants]]
    name = "ALS"
    kind = "als"                  # needs recgen[cf]; options: factors, regularization, iterations

    [[variants]]
    name = "recgen content"
    kind = "recgen"

    [[variants]]
    name = "ALS + recgen"
    kind = "als+recgen"           # ALS top-`candidates`, re-ranked by BlendReranker (weight picked on val)

Everything is reproducible from ``seed``. The same steps are plain functions
(:func:`load_config`, :func:`run_evaluation`) for notebooks.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recgen._io import atomic_path, atomic_write_json, library_versions
from recgen.evaluation.compare import compare_rankings
from recgen.evaluation.ranking import global_time_split, leave_last_n_split, random_split
from recgen.datasets import names as dataset_names
from recgen.evaluation.variants import VariantContext, variant_kinds

__all__ = ["load_config", "run_evaluation", "EvaluationResult"]
_SECTIONS = {"data": {"dataset", "path", "items", "interactions", "reviews", "image_root", "store"},
             "split": {"kind", "test_fraction", "val_fraction", "n"},
             "evaluation": {"k", "seed", "n_boot", "baseline", "short_history", "examples", "generate",
                            "generator_epochs"},
             "variants": None}
_DEFAULTS = {"data": {"dataset": "sample"},
             "split": {"kind": "global_time", "test_fraction": 0.1, "val_fraction": 0.1, "n": 2},
             "evaluation": {"k": 20, "seed": 0, "n_boot": 2000, "baseline": None, "short_history": 5, "examples": 4,
                            "generate": False, "generator_epochs": 8}}


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` produced."""

    table: pd.DataFrame
    html: Path
    json: Path
    csv: Path


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a TOML evaluation config; unknown keys and bad values raise ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation config not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {sorted(unknown)}; sections are {sorted(_SECTIONS)}")
    cfg: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        if keys is None:
            continue
        given = raw.get(section, {})
        bad = set(given) - keys
        if bad:
            raise ValueError(f"{path}: unknown key(s) {sorted(bad)} in [{section}]; allowed: {sorted(keys)}")
        cfg[section] = {**_DEFAULTS[section], **given}
    kinds = variant_kinds()
    variants = raw.get("variants")
    if not variants:
        raise ValueError(f"{path}: declare at least one [[variants]] with name and kind ({', '.join(kinds)})")
    names = set()
    for n, v in enumerate(variants):
        if "name" not in v or "kind" not in v:
            raise ValueError(f"{path}: variant #{n + 1} needs name and kind; got {v}")
        if v["kind"] not in kinds:
            raise ValueError(f"{path}: variant {v['name']!r} has kind {v['kind']!r}; kinds: {', '.join(kinds)}")
        if v["name"] in names:
            raise ValueError(f"{path}: two variants are named {v['name']!r}")
        allowed = kinds[v["kind"]].options
        extra = set(v) - {"name", "kind"} - allowed
        if extra:
            raise ValueError(f"{path}: variant {v['name']!r} ({v['kind']}) has unknown option(s) {sorted(extra)}; "
                             f"allowed: {sorted(allowed) or 'none'}")
        names.add(v["name"])
    cfg["variants"] = variants
    if cfg["split"]["kind"] not in ("global_time", "leave_last_n", "random"):
        raise ValueError(f"{path}: [split] kind must be global_time, leave_last_n or random; got {cfg['split']['kind']!r}")
    allowed = [*dataset_names(with_interactions=True), "files"]
    if cfg["data"]["dataset"] not in allowed:
        raise ValueError(f"{path}: [data] dataset must be one of {allowed}; got {cfg['data']['dataset']!r}")
    base = cfg["evaluation"]["baseline"]
    if base is not None and base not in names:
        raise ValueError(f"{path}: baseline {base!r} is not a variant name ({sorted(names)})")
    cfg["_dir"] = str(path.parent.resolve())
    return cfg


def _load_data(cfg: dict[str, Any], out: Path):
    import recgen.datasets as datasets
    from recgen.catalog import CatalogStore

    data = cfg["data"]
    root = Path(cfg.get("_dir", "."))
    if data["dataset"] == "files":
        from recgen.catalog import load_frames

        if "items" not in data or "interactions" not in data:
            raise ValueError("[data] dataset = 'files' needs items = and interactions = (reviews = optional)")
        catalog = load_frames(items=root / data["items"], interactions=root / data["interactions"],
                              reviews=root / data["reviews"] if "reviews" in data else None,
                              image_root=root / data["image_root"] if "image_root" in data else None)
    else:
        spec = datasets.DATASETS[data["dataset"]]
        if spec.needs_path and "path" not in data:
            raise ValueError(f"[data] dataset = {spec.name!r} needs path = {spec.path_help}")
        path = root / data["path"] if "path" in data else out / "sample"
        catalog = datasets.load(spec.name, path, seed=cfg["evaluation"]["seed"])
    # one store per dataset (and sample seed): a store only ever adds rows, so sharing one between
    # datasets would evaluate on their union. It doubles as the embedding cache across runs.
    default = out / (f"store-sample-seed{cfg['evaluation']['seed']}.db" if data["dataset"] == "sample"
                     else f"store-{data['dataset']}.db")
    store = CatalogStore(root / data["store"] if "store" in data else default)
    store.ingest(catalog)
    return store


def _split(inter: pd.DataFrame, split: dict[str, Any], seed: int):
    """(train, val, test); with ``val_fraction = 0`` val is carved from the end of train the same way."""
    kind = split["kind"]
    val_fraction = split["val_fraction"] or 0.1
    if kind == "global_time":
        if split["val_fraction"]:
            return global_time_split(inter, test_fraction=split["test_fraction"], val_fraction=split["val_fraction"])
        rest, test = global_time_split(inter, test_fraction=split["test_fraction"])
        train, val = global_time_split(rest, test_fraction=val_fraction)
        return train, val, test
    if kind == "leave_last_n":
        rest, test = leave_last_n_split(inter, n=split["n"])
        train, val = leave_last_n_split(rest, n=split["n"])
        return train, val, test
    rest, test = random_split(inter, test_fraction=split["test_fraction"], seed=seed)
    train, val = random_split(rest, test_fraction=val_fraction, seed=seed + 1)
    return train, val, test


def _reviews_known_by(reviews: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    """Reviews a model fitted on ``part`` may see: none written after ``part`` ends.

    With timestamps on both sides: reviews up to ``part``'s last interaction. Otherwise: reviews
    of (user, item) pairs in ``part``, plus anonymous ones (no user).
    """
    if reviews.empty:
        return reviews
    if "timestamp" in reviews.columns and "timestamp" in part.columns and reviews["timestamp"].notna().any():
        cutoff = pd.to_numeric(part["timestamp"], errors="coerce").max()
        ts = pd.to_numeric(reviews["timestamp"], errors="coerce")
        if pd.notna(cutoff) and ts.notna().any():
            return reviews[ts.notna() & (ts <= cutoff)]
    pairs = set(zip(part["user_id"].astype(str), part["item_id"].astype(str)))
    anon = reviews["user_id"].isna() if "user_id" in reviews.columns else pd.Series(True, index=reviews.index)
    mine = [(str(u), str(i)) in pairs for u, i in zip(reviews.get("user_id", [None] * len(reviews)), reviews["item_id"])]
    return reviews[anon.to_numpy() | np.asarray(mine, dtype=bool)]


def _generate_examples(model, catalog, history: pd.DataFrame, lists, users, epochs: int, seed: int, echo):
    """Train preview + blurb generators on the training interactions; generate for the example cards."""
    from recgen.catalog import CatalogData
    from recgen.generators import ContentGenerator, GenerationConfig
    from recgen.generators.registry import quick_overrides
    from recgen.report import array_data_uri

    part = CatalogData(items=catalog.items, reviews=_reviews_known_by(catalog.reviews, history),
                       interactions=history, name=catalog.name)
    gen = ContentGenerator(GenerationConfig(image_generator="studio", blurb_generator="grounded",
                                            image_overrides=quick_overrides("studio", epochs), seed=seed)
                           ).fit(model, part)
    pairs = sorted({(u, i) for u in users for ranked in lists.values() for i in ranked.get(u, [])[:5]})
    if not pairs:
        return {}
    res = gen.generate([u for u, _ in pairs], [i for _, i in pairs], seed=seed)
    echo(f"generated {len(pairs)} previews and blurbs for the examples")
    return {p: (array_data_uri(res.images[n]) if res.images is not None else None,
                res.blurbs[n] if res.blurbs is not None else None) for n, p in enumerate(pairs)}


def run_evaluation(config: dict[str, Any] | str | Path, out: str | Path, *,
                   echo: Callable[[str], None] = print) -> EvaluationResult:
    """Run every variant on the configured split and write ``report.html``, ``results.json``, ``results.csv``."""
    from recgen.catalog import CatalogData
    from recgen.encoders import EmbeddingCache
    from recgen.model import Recgen
    from recgen.report import interval_plot_svg, thumbnail_data_uri, write_report

    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ev = cfg["evaluation"]
    k, seed = int(ev["k"]), int(ev["seed"])
    store = _load_data(cfg, out)
    try:
        catalog = store.catalog()
        cache = EmbeddingCache(store.engine)
        inter = catalog.interactions.assign(user_id=lambda d: d["user_id"].astype(str),
                                            item_id=lambda d: d["item_id"].astype(str))
        items = catalog.items["item_id"].astype(str).to_numpy()
        train, val, test = _split(inter, cfg["split"], seed)
        history = pd.concat([train, val], ignore_index=True)
        users = sorted(set(test["user_id"]) & set(history["user_id"]))
        test = test[test["user_id"].isin(users)]
        if not users:
            raise ValueError("no test user has history before the test period: use a larger dataset or another split")
        echo(f"split {cfg['split']['kind']}: train {len(train)}, val {len(val)}, test {len(test)} ({len(users)} users)")

        fitted: dict[str, Any] = {}

        def recgen_on(name: str, part: pd.DataFrame):
            if name not in fitted:
                # reviews written after the part ends would leak the future into the review vectors
                fitted[name] = Recgen().fit(CatalogData(items=catalog.items,
                                                        reviews=_reviews_known_by(catalog.reviews, part),
                                                        interactions=part, name=catalog.name), cache=cache)
            return fitted[name]

        lists: dict[str, dict[str, list[str]]] = {}
        kinds = variant_kinds()
        ctx = VariantContext(catalog=catalog, train=train, val=val, test=test, history=history, users=users,
                             items=items, k=k, seed=seed, recgen_on=recgen_on, echo=echo)
        for v in cfg["variants"]:
            name = v["name"]
            lists[name] = kinds[v["kind"]].rank(ctx, {o: x for o, x in v.items() if o not in ("name", "kind")})
            echo(f"{name}: ranked {len(lists[name])} users")

        model = recgen_on("all", history)
        vecs = dict(zip(model.items.ids, model.items.vectors["fused"]))
        rng = np.random.default_rng(seed)
        example_users = list(rng.permutation(np.array(users, dtype=object))[: int(ev["examples"])])
        generated: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        if ev["generate"] and example_users:
            generated = _generate_examples(model, catalog, history, lists, example_users, int(ev["generator_epochs"]),
                                           seed, echo)
        table = compare_rankings(lists, test, train=history, baseline=ev["baseline"], k=k,
                                 item_vectors=vecs, n_items=len(items), short_history=int(ev["short_history"]),
                                 n_boot=int(ev["n_boot"]), seed=seed)
    finally:
        store.close()

    # ---- outputs: CSV (flat), JSON (config + versions + rows), HTML (tables, interval plots, examples)
    flat = table.copy()
    for c in [c for c in flat.columns if c.endswith(" ci")]:
        flat[c.replace(" ci", " ci_low")] = flat[c].map(lambda t: t[0] if isinstance(t, tuple) else np.nan)
        flat[c.replace(" ci", " ci_high")] = flat[c].map(lambda t: t[1] if isinstance(t, tuple) else np.nan)
        flat = flat.drop(columns=c)
    csv_path, json_path, html_path = out / "results.csv", out / "results.json", out / "report.html"
    with atomic_path(csv_path) as tmp:
        flat.to_csv(tmp, index=False)
    atomic_write_json(json_path, {"config": {s: cfg[s] for s in ("data", "split", "evaluation", "variants")},
                                  "versions": library_versions(),
                                  "rows": json.loads(flat.to_json(orient="records"))})
    metric_names = [c for c in ("recall", "ndcg", "mrr", "map", "hit") if f"{c}@{k}" in table.columns]
    tables, plots = [], []
    for slice_name, part in table.groupby("slice", sort=False):
        cols = ["variant", "users"] + [f"{m}@{k} [95% CI]" for m in metric_names] + \
            [f"Δ{m}@{k} (p)" for m in ("ndcg", "recall")] + [c for c in (f"coverage@{k}", f"diversity@{k}", f"novelty@{k}")
                                                             if c in part.columns]
        rows = []
        for _, r in part.iterrows():
            row = [r["variant"], int(r["users"])]
            row += [f"{r[f'{m}@{k}']:.4f} [{r[f'{m}@{k} ci'][0]:.4f}, {r[f'{m}@{k} ci'][1]:.4f}]" for m in metric_names]
            for m in ("ndcg", "recall"):
                d = r.get(f"Δ{m}@{k}")
                row.append("baseline" if d is None or d != d else f"{d:+.4f} (p={r[f'p {m}@{k}']:.2g})")
            row += [f"{r[c]:.3f}" for c in cols[len(row):]]
            rows.append(row)
        tables.append({"title": f"{slice_name}", "columns": cols, "rows": rows,
                       "note": "Means over test users with 95% percentile-bootstrap intervals; Δ is paired per user "
                               "against the baseline, p from the Wilcoxon signed-rank test."})
        plots.append({"title": f"NDCG@{k}, {slice_name}", "svg": interval_plot_svg(
            {r["variant"]: (r[f"ndcg@{k}"], *r[f"ndcg@{k} ci"]) for _, r in part.iterrows()})})
    # example users: their history and each variant's top 5, hits framed
    meta = catalog.items.assign(item_id=catalog.items["item_id"].astype(str)).set_index("item_id")
    truth = test.groupby("user_id")["item_id"].agg(set)
    examples = []
    for u in example_users:
        hist = history[history["user_id"] == u].tail(5)["item_id"].tolist()[::-1]

        def card(i, hit=False):
            row = meta.loc[i] if i in meta.index else None
            return {"item_id": i, "title": str(row["title"]) if row is not None else i, "hit": hit,
                    "img": thumbnail_data_uri(row["image_path"]) if row is not None else None}

        for name, ranked in lists.items():
            recs = []
            for i in ranked.get(u, [])[:5]:
                c = card(i, i in truth.get(u, set()))
                c["preview"], c["blurb"] = generated.get((u, i), (None, None))
                recs.append(c)
            examples.append({"user_id": f"{u}: {name}", "history": [card(i) for i in hist], "recs": recs})
    write_report(html_path, title="recgen evaluation", subtitle=f"{cfg['data']['dataset']}, split "
                 f"{cfg['split']['kind']}, k={k}, seed={seed}, {len(users)} test users", tables=tables, plots=plots,
                 users=examples, users_note="Each example user's latest history and every variant's top 5; a green "
                 "frame marks an item the user interacted with in the test period.")
    echo(f"wrote {html_path}, {json_path}, {csv_path}")
    return EvaluationResult(table=table, html=html_path, json=json_path, csv=csv_path)
