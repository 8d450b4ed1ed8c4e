"""Command line: ``recgen ingest | index | recommend | search | enrich | demo``.

A *workdir* holds one catalog: ``recgen.db`` (the SQLite store, also the embedding
cache) and ``model/`` (the fitted space, indexes and profiles).
"""
from __future__ import annotations

import json
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="recgen: multimodal item space (text, images, reviews) in FAISS, user taste profiles and "
         "similarity features for existing recommenders. Typical flow: `recgen ingest DIR ...`, "
         "`recgen index DIR`, then `recgen recommend DIR USER` or `recgen enrich DIR --input ... --output ...`. "
         "`recgen demo` runs everything on the bundled sample catalog.",
)


class Dataset(str, Enum):
    sample = "sample"
    movielens = "movielens"


class Modality(str, Enum):
    fused = "fused"
    text = "text"
    image = "image"
    review = "review"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _store(workdir: Path, store_url: Optional[str]):
    from recgen.catalog import CatalogStore

    workdir.mkdir(parents=True, exist_ok=True)
    return CatalogStore(store_url or workdir / "recgen.db")


def _model(workdir: Path):
    from recgen.errors import ArtifactError
    from recgen.model import Recgen

    try:
        return Recgen.load(workdir / "model")
    except ArtifactError as exc:
        _fail(f"{exc}. Run `recgen index {workdir}` first.")


@app.command()
def ingest(
    workdir: Path = typer.Argument(..., help="Folder for this catalog (created if missing)."),
    dataset: Optional[Dataset] = typer.Option(None, help="A named layout: 'sample' (generated) or 'movielens' (needs --path)."),
    path: Optional[Path] = typer.Option(None, help="Data folder of --dataset."),
    items: Optional[Path] = typer.Option(None, help="Items file (CSV/Parquet/JSONL): item_id, title, description, attributes, image_path."),
    reviews: Optional[Path] = typer.Option(None, help="Reviews file: item_id, user_id, rating, text, timestamp."),
    interactions: Optional[Path] = typer.Option(None, help="Interactions file: user_id, item_id, timestamp, rating, event."),
    image_root: Optional[Path] = typer.Option(None, help="Folder relative image paths are resolved against (default: the items file's folder)."),
    store: Optional[str] = typer.Option(None, help="SQLAlchemy URL of the store (default: sqlite file WORKDIR/recgen.db)."),
    strict: bool = typer.Option(False, help="Store nothing if any row is bad (default: store the good rows, report the bad)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Validate and store items, reviews and interactions (transactional, idempotent).

    Bad rows are listed with file, row and column and written to WORKDIR/bad_rows.csv;
    a failed ingest leaves what was stored before untouched.
    """
    _setup_logging(verbose)
    from recgen.catalog import load_frames
    from recgen.demo import _load
    from recgen.errors import ValidationError

    if dataset is None and items is None and reviews is None and interactions is None:
        _fail("nothing to ingest: give --dataset, or --items/--reviews/--interactions files")
    try:
        data = _load(dataset.value, path, workdir, 0) if dataset else load_frames(
            items=items, reviews=reviews, interactions=interactions, image_root=image_root)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    with _store(workdir, store) as st:
        try:
            result = st.ingest(data, on_error="raise" if strict else "report")
        except ValidationError as exc:
            if exc.report is not None:
                exc.report.to_frame().to_csv(workdir / "bad_rows.csv", index=False)
            _fail(f"{exc}\nnothing was stored (--strict); all bad rows: {workdir / 'bad_rows.csv'}", code=1)
        typer.echo(str(result))
        if result.report:
            result.report.to_frame().to_csv(workdir / "bad_rows.csv", index=False)
            typer.echo(result.report.format(max_rows=20))
            typer.echo(f"all bad rows: {workdir / 'bad_rows.csv'}")
        typer.echo(f"store now holds: {st.counts()}")


@app.command()
def index(
    workdir: Path = typer.Argument(..., help="Folder given to `recgen ingest`."),
    store: Optional[str] = typer.Option(None, help="SQLAlchemy URL of the store (default WORKDIR/recgen.db)."),
    text_model: Optional[str] = typer.Option(None, help="Local sentence-transformers folder (default: bundled all-MiniLM-L6-v2)."),
    clip_model: Optional[str] = typer.Option(None, help="Local CLIP model (sentence-transformers format) for text+images; no projection is trained."),
    factory: str = typer.Option("auto", help="FAISS index_factory string, or 'auto' (exact below 20k items, IVF above)."),
    epochs: int = typer.Option(150, help="Max epochs of the image projection."),
    device: Optional[str] = typer.Option(None, help="Torch device (default: cuda if available, else cpu)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Embed the stored catalog, train the image projection, build the FAISS indexes and user profiles.

    Embeddings are cached by content hash in the store: re-running on an unchanged
    catalog encodes nothing. The model is saved atomically to WORKDIR/model.
    """
    _setup_logging(verbose)
    from recgen.encoders import ProjectionConfig, SpaceConfig
    from recgen.model import Recgen

    with _store(workdir, store) as st:
        if not st.counts().get("items"):
            _fail(f"the store {st.url} has no items: run `recgen ingest {workdir} ...` first")
        space = SpaceConfig(text_model=text_model, clip_model=clip_model, device=device,
                            projection=ProjectionConfig(epochs=epochs))
        model = Recgen(space=space, index_factory=factory).fit(st, progress=True)
    out = model.save(workdir / "model")
    typer.echo(f"fitted: {json.dumps(model.fit_info)}")
    typer.echo(f"indexes: {', '.join(f'{m}={ix!r}' for m, ix in model.indexes.items())}")
    typer.echo(f"saved to {out}")


@app.command()
def recommend(
    workdir: Path = typer.Argument(..., help="Folder with a fitted model (`recgen index`)."),
    user_id: str = typer.Argument(..., help="User to recommend for."),
    k: int = typer.Option(10, "-k", min=1, help="Number of items."),
    include_seen: bool = typer.Option(False, help="Also return items the user already interacted with."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k items for a user by similarity of content to their taste profile."""
    from recgen.errors import UnknownIdError

    model = _model(workdir)
    try:
        ids, scores = model.recommend(user_id, k, exclude_seen=not include_seen)
    except (UnknownIdError, ValueError) as exc:
        _fail(str(exc))
    _print_ranking(ids, scores, as_json)


@app.command()
def search(
    workdir: Path = typer.Argument(..., help="Folder with a fitted model."),
    query: Optional[str] = typer.Argument(None, help="Text query."),
    image: Optional[Path] = typer.Option(None, help="Search with an image file instead of text."),
    modality: Modality = typer.Option(Modality.fused, help="Which item vectors to search: e.g. 'image' finds items by their pictures."),
    k: int = typer.Option(10, "-k", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Search items by text or by image, in any modality (cross-modal search)."""
    if (query is None) == (image is None):
        _fail("give exactly one of QUERY or --image")
    model = _model(workdir)
    try:
        ids, scores = (model.search_text(query, k, modality=modality.value) if query is not None
                       else model.search_image(image, k, modality=modality.value))
    except ValueError as exc:
        _fail(str(exc))
    _print_ranking(ids, scores, as_json)


@app.command()
def enrich(
    workdir: Path = typer.Argument(Path("."), help="Saved recgen directory (with model/, and generators/ for "
                                                   "--blurbs/--previews). Default: the current folder."),
    input: Path = typer.Option(..., "--input", "-i", help="Candidates (.parquet, .csv, .tsv, .jsonl) with user and item id columns."),
    output: Path = typer.Option(..., "--output", "-o", help="Enriched file (.parquet or .csv), replaced atomically at the end."),
    user_col: str = typer.Option("user_id", help="Name of the user id column."),
    item_col: str = typer.Option("item_id", help="Name of the item id column."),
    chunk_rows: int = typer.Option(100_000, min=1, help="Rows enriched and written at once (bounds memory)."),
    blurbs: bool = typer.Option(False, "--blurbs", help="Add recgen_blurb (needs trained generators)."),
    previews: bool = typer.Option(False, "--previews", help="Add recgen_preview PNG bytes (needs trained generators; slow)."),
    progress: bool = typer.Option(True, help="Progress bar."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Add recgen features (fused/text/image/review similarity, known_user/known_item flags) to a
    candidates file, streaming in chunks. Resumable: after an interruption, run the same command
    again and it continues from the last written chunk (no row lost or duplicated)."""
    _setup_logging(verbose)
    from recgen.errors import ArtifactError, NotFittedError
    from recgen_adapters.batch import enrich_file
    from recgen_adapters.core import Enricher

    try:
        enricher = Enricher.load(workdir)
    except ArtifactError as exc:
        _fail(str(exc))
    try:
        result = enrich_file(enricher, input, output, chunk_rows=chunk_rows, user_col=user_col, item_col=item_col,
                             blurbs=blurbs, previews=previews, progress=progress)
    except (FileNotFoundError, ValueError, NotFittedError) as exc:
        _fail(str(exc))
    typer.echo(str(result))


@app.command()
def serve(
    workdir: Path = typer.Argument(..., help="Saved recgen directory (model/, optional generators/)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 exposes the service: set API keys)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    api_key_file: Optional[Path] = typer.Option(None, help="File with accepted API keys, one per line "
                                                          "(or set RECGEN_API_KEYS=k1,k2). Without keys auth is off."),
    max_candidates: Optional[int] = typer.Option(None, min=1, max=10_000, help="Candidates per /enrich request (default 10000)."),
    rate_limit: Optional[float] = typer.Option(None, help="Requests/s per API key (token bucket); default off."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads the model)."),
    reload_interval: Optional[float] = typer.Option(
        None, min=0.1, help="Seconds between checks of DIR's manifests; a changed model (e.g. re-saved by "
                            "`recgen index`) is loaded and swapped in without a restart. Default: only on "
                            "POST /admin/reload."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve enrichment, recommendations, search, similar items and previews over HTTP (FastAPI).

    OpenAPI docs at http://HOST:PORT/docs. API keys are never read from the command line
    (other users can see it in `ps`): use --api-key-file or RECGEN_API_KEYS. A re-saved DIR is
    picked up without a restart by POST /admin/reload or --reload-interval; every response
    names the model version that answered it in the X-Recgen-Model-Version header.
    """
    import os

    from recgen.errors import ArtifactError, MissingExtraError
    from recgen_adapters.core import resolve_directory

    try:
        import uvicorn

        from recgen_adapters.service import config_from_env
    except (ImportError, MissingExtraError) as exc:
        _fail(f"{exc}. Fix: pip install 'recgen[serve]'")
    try:
        resolve_directory(workdir)
        env = dict(os.environ)
        if api_key_file is not None:
            env["RECGEN_API_KEY_FILE"] = str(api_key_file)
        config = config_from_env(env, max_candidates=max_candidates, rate_limit=rate_limit,
                                 reload_interval=reload_interval)
    except (ArtifactError, ValueError) as exc:
        _fail(str(exc))
    if not config.api_keys and host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: serving on {host} without API keys: anyone who can reach it can use it",
                    fg=typer.colors.YELLOW, err=True)
    # the factory reads these in every worker process
    os.environ["RECGEN_SERVE_DIR"] = str(workdir.resolve())
    if api_key_file is not None:
        os.environ["RECGEN_API_KEY_FILE"] = str(api_key_file.resolve())
    for name, value in (("RECGEN_MAX_CANDIDATES", max_candidates), ("RECGEN_RATE_LIMIT", rate_limit),
                        ("RECGEN_RELOAD_INTERVAL", reload_interval)):
        if value is not None:
            os.environ[name] = str(value)
    typer.echo(f"serving {workdir} on http://{host}:{port} (docs: /docs, auth: {'on' if config.api_keys else 'off'})")
    uvicorn.run("recgen_adapters.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


@app.command()
def demo(
    dataset: Dataset = typer.Option(Dataset.sample, help="'sample' (bundled synthetic shop) or 'movielens' (needs --path)."),
    path: Optional[Path] = typer.Option(None, help="Data folder (movielens-posters layout for --dataset movielens)."),
    out: Path = typer.Option(Path("recgen-demo"), help="Output folder: store, model, metrics.json, report.html."),
    users: int = typer.Option(6, min=1, help="Users shown in the report."),
    seed: int = typer.Option(0, help="Seed of the sample catalog and the evaluation."),
    generate: bool = typer.Option(True, help="Train the preview/blurb generators and show their output (--no-generate skips)."),
    image_generator: str = typer.Option("cvae", help="Preview generator: 'cvae' or 'cgan' (adds an adversarial loss)."),
    generator_epochs: Optional[int] = typer.Option(None, help="Epochs of the preview generator (default 15 in the demo)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the whole slice (ingest, embed, index, profile, recommend, enrich, generate previews and blurbs,
    evaluate) and write an HTML report."""
    _setup_logging(verbose)
    from recgen.demo import run_demo

    try:
        result = run_demo(dataset.value, path=path, out=out, n_users=users, seed=seed, generate=generate,
                          image_generator=image_generator, generator_epochs=generator_epochs, echo=typer.echo)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.secho(f"open {result.report_path.resolve()}", fg=typer.colors.GREEN)


@app.command()
def evaluate(
    config: Path = typer.Argument(..., help="TOML file declaring data, split, metrics and variants "
                                            "(see benchmarks/configs/eval_sample.toml)."),
    out: Path = typer.Option(Path("recgen-eval"), help="Output folder: report.html, results.json, results.csv."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Offline A/B: every variant on the same split, one table with intervals, deltas and p-values."""
    _setup_logging(verbose)
    from recgen.errors import MissingExtraError
    from recgen.evaluation.harness import load_config, run_evaluation

    try:
        cfg = load_config(config)
        result = run_evaluation(cfg, out, echo=typer.echo)
    except (FileNotFoundError, ValueError, MissingExtraError) as exc:
        _fail(str(exc))
    typer.secho(f"open {result.html.resolve()}", fg=typer.colors.GREEN)


@app.command()
def doctor(
    workdir: Path = typer.Argument(..., help="Working directory (recgen.db, model/, generators/)."),
    store: Optional[str] = typer.Option(None, help="SQLAlchemy URL of the store (default WORKDIR/recgen.db)."),
    fix: bool = typer.Option(False, "--fix", help="Remove leftovers of interrupted writes."),
) -> None:
    """Check that the store, the model's files (checksums), the FAISS indexes and the items agree.

    Exit status 1 when a check fails; each finding names its fix.
    """
    from recgen.doctor import diagnose

    checks = diagnose(workdir, store_url=store, fix=fix)
    colours = {"ok": typer.colors.GREEN, "warn": typer.colors.YELLOW, "fail": typer.colors.RED}
    for c in checks:
        typer.secho(str(c), fg=colours.get(c.status))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def _print_ranking(ids, scores, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ids": [str(i) for i in ids], "scores": [float(s) for s in scores]}))
        return
    for rank, (i, s) in enumerate(zip(ids, scores), 1):
        typer.echo(f"{rank:3d}  {s:7.4f}  {i}")


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
