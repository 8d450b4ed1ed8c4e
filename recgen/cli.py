"""Command line: ``recgen ingest | index | recommend | search | demo | evaluate | doctor``, plus the
commands plugins register (``recgen_adapters`` adds ``enrich`` and ``serve``; see :mod:`recgen.plugins`).

Each command works on a working folder laid out as :mod:`recgen.workdir` describes.
"""
from __future__ import annotations

import json
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from recgen.catalog.columns import TABLES
from recgen.datasets import DATASETS, names as dataset_names
from recgen.generators import IMAGE_GENERATORS
from recgen.modalities import VECTOR_MODALITIES
from recgen.workdir import GENERATORS_DIR, MODEL_DIR, STORE_FILE, Workdir

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="recgen: multimodal item space (text, images, reviews) in FAISS, user taste profiles and "
         "similarity features for existing recommenders. Typical flow: `recgen ingest DIR ...`, "
         "`recgen index DIR`, then `recgen recommend DIR USER` or `recgen enrich DIR --input ... --output ...`. "
         "`recgen demo` runs everything on the bundled sample catalog.",
)


Dataset = Enum("Dataset", {n: n for n in DATASETS}, type=str)  # choices of --dataset (recgen.datasets)
PreviewGenerator = Enum("PreviewGenerator", {n: n for n in IMAGE_GENERATORS}, type=str)  # recgen.generators
DemoDataset = Enum("DemoDataset", {n: n for n in dataset_names(with_interactions=True)}, type=str)
_DATASET_HELP = "; ".join(f"'{s.name}': {s.description}" + (" (needs --path)" if s.needs_path else "")
                          for s in DATASETS.values())


Modality = Enum("Modality", {m: m for m in VECTOR_MODALITIES}, type=str)  # choices of --modality


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _store(workdir: Path, store_url: Optional[str]):
    from recgen.catalog import CatalogStore

    workdir.mkdir(parents=True, exist_ok=True)
    return CatalogStore(Workdir(workdir).store_url(store_url))


def _model(workdir: Path):
    from recgen.errors import ArtifactError
    from recgen.model import Recgen

    try:
        return Recgen.load(Workdir(workdir).model)
    except ArtifactError as exc:
        _fail(f"{exc}. Run `recgen index {workdir}` first.")


@app.command()
def ingest(
    workdir: Path = typer.Argument(..., help="Folder for this catalog (created if missing)."),
    dataset: Optional[Dataset] = typer.Option(None, help=f"A named data set. {_DATASET_HELP}."),
    path: Optional[Path] = typer.Option(None, help="Data folder of --dataset (for 'sample': where to write it)."),
    items: Optional[Path] = typer.Option(None, help=f"Items file (CSV/Parquet/JSONL): {TABLES['items'].summary()}."),
    reviews: Optional[Path] = typer.Option(None, help=f"Reviews file: {TABLES['reviews'].summary()}."),
    interactions: Optional[Path] = typer.Option(None, help=f"Interactions file: {TABLES['interactions'].summary()}."),
    image_root: Optional[Path] = typer.Option(None, help="Folder relative image paths are resolved against (default: the items file's folder)."),
    store: Optional[str] = typer.Option(None, help=f"SQLAlchemy URL of the store (default: sqlite file WORKDIR/{STORE_FILE})."),
    strict: bool = typer.Option(False, help="Store nothing if any row is bad (default: store the good rows, report the bad)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Validate and store items, reviews and interactions (transactional, idempotent).

    Bad rows are listed with file, row and column and written to WORKDIR/bad_rows.csv (see recgen.workdir);
    a failed ingest leaves what was stored before untouched.
    """
    _setup_logging(verbose)
    import recgen.datasets as datasets
    from recgen.catalog import load_frames
    from recgen.errors import ValidationError

    if dataset is None and items is None and reviews is None and interactions is None:
        _fail("nothing to ingest: give --dataset, or --items/--reviews/--interactions files")
    try:
        data = datasets.load(dataset.value, path or (workdir / "sample-data" if dataset.value == "sample" else None),
                             0) if dataset else load_frames(
            items=items, reviews=reviews, interactions=interactions, image_root=image_root)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    with _store(workdir, store) as st:
        try:
            result = st.ingest(data, on_error="raise" if strict else "report")
        except ValidationError as exc:
            if strict and exc.report is not None:  # bad rows refused by --strict: list them all
                exc.report.to_frame().to_csv(Workdir(workdir).bad_rows, index=False)
                _fail(f"{exc}\nnothing was stored (--strict); all bad rows: {Workdir(workdir).bad_rows}", code=1)
            # the file as a whole was refused (e.g. a required column missing): there are no bad rows to list
            _fail(f"{exc}\nnothing was stored", code=1)
        typer.echo(str(result))
        if result.report:
            result.report.to_frame().to_csv(Workdir(workdir).bad_rows, index=False)
            typer.echo(result.report.format(max_rows=20))
            typer.echo(f"all bad rows: {Workdir(workdir).bad_rows}")
        typer.echo(f"store now holds: {st.counts()}")


@app.command()
def index(
    workdir: Path = typer.Argument(..., help="Folder given to `recgen ingest`."),
    store: Optional[str] = typer.Option(None, help=f"SQLAlchemy URL of the store (default WORKDIR/{STORE_FILE})."),
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
    out = model.save(Workdir(workdir).model)
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
def demo(
    dataset: DemoDataset = typer.Option("sample", help=f"A named data set with interactions. {_DATASET_HELP}."),
    path: Optional[Path] = typer.Option(None, help="Data folder of --dataset (for 'sample': where to write it)."),
    out: Path = typer.Option(Path("recgen-demo"), help="Output folder: store, model, metrics.json, report.html."),
    users: int = typer.Option(6, min=1, help="Users shown in the report."),
    seed: int = typer.Option(0, help="Seed of the sample catalog and the evaluation."),
    generate: bool = typer.Option(True, help="Train the preview/blurb generators and show their output (--no-generate skips)."),
    image_generator: PreviewGenerator = typer.Option("studio", help="Preview generator, by registry name "
                                                                 "(recgen.generators; 'cgan' adds an adversarial loss)."),
    generator_epochs: Optional[int] = typer.Option(None, help="Epochs of the preview generator (studio: its text-to-image editor, 20 in the demo; cvae/cgan: 15)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the whole slice (ingest, embed, index, profile, recommend, enrich, generate previews and blurbs,
    evaluate) and write an HTML report."""
    _setup_logging(verbose)
    from recgen.demo import run_demo

    try:
        result = run_demo(dataset.value, path=path, out=out, n_users=users, seed=seed, generate=generate,
                          image_generator=image_generator.value, generator_epochs=generator_epochs, echo=typer.echo)
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
    workdir: Path = typer.Argument(..., help=f"Working directory ({STORE_FILE}, {MODEL_DIR}/, {GENERATORS_DIR}/)."),
    store: Optional[str] = typer.Option(None, help=f"SQLAlchemy URL of the store (default WORKDIR/{STORE_FILE})."),
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


def _add_plugin_commands() -> None:
    """Commands of plugin packages (``recgen enrich``, ``recgen serve`` from recgen_adapters)."""
    from recgen.plugins import load_plugins

    taken = {c.name or c.callback.__name__ for c in app.registered_commands}
    for name, (function, options) in load_plugins().cli_commands.items():
        if name in taken:
            logging.getLogger(__name__).warning("plugin command %r clashes with a core command; skipped", name)
            continue
        app.command(name=name, **options)(function)


_add_plugin_commands()


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
