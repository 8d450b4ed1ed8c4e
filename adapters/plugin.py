"""What ``recgen_adapters`` adds to the core through :mod:`recgen.plugins`.

Declared in ``pyproject.toml`` as the ``recgen.plugins`` entry point ``adapters``:

* the CLI commands ``recgen enrich`` (the resumable batch job, :mod:`.batch`) and
  ``recgen serve`` (the HTTP service, :mod:`.service`);
* the evaluation variant kind ``als+recgen``: implicit ALS candidates re-ranked by
  :class:`~recgen_adapters.rerank.BlendReranker` with recgen features, its weight picked on
  the validation part of the split.

Importing this module is cheap: the commands import their heavy parts when they run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

__all__ = ["register"]


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
    from recgen.cli import _fail, _setup_logging
    from recgen.enrich import Enricher

    _setup_logging(verbose)
    from recgen.errors import ArtifactError, NotFittedError
    from recgen_adapters.batch import enrich_file

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
    gpu: bool = typer.Option(False, "--gpu", help="Search the FAISS indexes on the GPU (needs the faiss-gpu extra "
                                                  "and a CUDA device; without them the service refuses to start "
                                                  "and says what to install). Default: CPU."),
    header_timeout: Optional[float] = typer.Option(
        None, min=0.1, help="Seconds a connection has to send a complete request head; then 408 and closed "
                            "(slow or idle clients, slowloris). Default 10."),
    body_timeout: Optional[float] = typer.Option(
        None, min=0.1, help="Seconds a request has to send its whole body once its head arrived. Default 60."),
    keepalive_timeout: Optional[float] = typer.Option(
        None, min=0.1, help="Seconds an idle keep-alive connection stays open. Default 5."),
    max_image_pixels: Optional[int] = typer.Option(
        None, min=1, help="Pixels an uploaded search image may decode to (422 above). Default 16000000."),
    image_decodes: Optional[int] = typer.Option(
        None, min=1, help="Image uploads decoded at once (the others wait). Default 2."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve enrichment, recommendations, search, similar items and previews over HTTP (FastAPI).

    OpenAPI docs at http://HOST:PORT/docs. API keys are never read from the command line
    (other users can see it in `ps`): use --api-key-file or RECGEN_API_KEYS. A re-saved DIR is
    picked up without a restart by POST /admin/reload or --reload-interval; every response
    names the model version that answered it in the X-Recgen-Model-Version header. No key is
    ever written to a log (keys sent in a query string are redacted from the access log).
    """
    import os

    from recgen.cli import _fail
    from recgen.errors import ArtifactError, MissingExtraError
    from recgen.workdir import resolve_directory

    try:
        from recgen_adapters.service import config_from_env
        from recgen_adapters.service.server import run
        from recgen_adapters.service.settings import ENV_FIELDS
    except (ImportError, MissingExtraError) as exc:
        _fail(f"{exc}. Fix: pip install 'recgen[serve]'")
    try:
        resolve_directory(workdir)
        env = dict(os.environ)
        if api_key_file is not None:
            env["RECGEN_API_KEY_FILE"] = str(api_key_file)
        options = {"max_candidates": max_candidates, "rate_limit": rate_limit, "reload_interval": reload_interval,
                   "header_timeout": header_timeout, "body_timeout": body_timeout,
                   "keepalive_timeout": keepalive_timeout, "max_image_pixels": max_image_pixels,
                   "image_decodes": image_decodes}
        config = config_from_env(env, **options)
    except (ArtifactError, ValueError) as exc:
        _fail(str(exc))
    if not config.api_keys and host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: serving on {host} without API keys: anyone who can reach it can use it",
                    fg=typer.colors.YELLOW, err=True)
    # the factory reads these in every worker process
    os.environ["RECGEN_SERVE_DIR"] = str(workdir.resolve())
    if api_key_file is not None:
        os.environ["RECGEN_API_KEY_FILE"] = str(api_key_file.resolve())
    if gpu:
        import numpy as np

        from recgen.index import ItemIndex

        try:  # fail here, with the pip line, rather than in every worker (GPU use starts at the first search)
            probe = np.array([[1.0, 0.0]], dtype=np.float32)
            ItemIndex.build(["probe"], probe, factory="Flat", use_gpu=True).search(probe[0], 1)
        except (MissingExtraError, ImportError, RuntimeError) as exc:
            _fail(f"--gpu: {exc}")
        os.environ["RECGEN_USE_GPU"] = "1"
    for field, value in options.items():
        if value is not None:
            os.environ[ENV_FIELDS[field][0]] = str(value)
    typer.echo(f"serving {workdir} on http://{host}:{port} (docs: /docs, auth: {'on' if config.api_keys else 'off'})")
    run(host=host, port=port, workers=workers, log_level=log_level, config=config)


def _als_recgen(ctx, options: dict[str, Any]) -> dict[str, list[str]]:
    """ALS top-``candidates`` re-ranked by a BlendReranker whose weight is picked on the validation part."""
    from recgen.enrich import Enricher
    from recgen.evaluation.variants import cf_candidates, ranked_lists
    from recgen_adapters.rerank import BlendReranker

    n = int(options.get("candidates", 100))
    val_users = sorted(set(ctx.val["user_id"]) & set(ctx.train["user_id"]))
    blend = BlendReranker(Enricher(ctx.recgen_on("train", ctx.train)), k=ctx.k)
    blend.fit(cf_candidates("als", options, ctx.train, val_users, ctx.items, n, ctx.seed), ctx.val)
    blend.use_enricher(Enricher(ctx.recgen_on("all", ctx.history)))
    cands = cf_candidates("als", options, ctx.history, ctx.users, ctx.items, n, ctx.seed)
    ctx.echo(f"als+recgen: blend weight {blend.weight_:g} picked on val")
    return ranked_lists(blend.rerank(cands), "rerank_rank", ctx.k)


def register(registry) -> None:
    """Entry point of the ``recgen.plugins`` group (see :mod:`recgen.plugins`)."""
    from recgen.evaluation.variants import CF_OPTIONS, VariantKind

    registry.add_cli_command(enrich, name="enrich")
    registry.add_cli_command(serve, name="serve")
    registry.add_variant_kind(VariantKind(
        "als+recgen", _als_recgen, CF_OPTIONS | {"candidates"},
        "implicit ALS top-`candidates` re-ranked by BlendReranker with recgen features (needs recgen[cf])"))
