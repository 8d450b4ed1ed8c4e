"""The working-folder layout, defined once: where the store, model, generators and reports live.

A *working folder* (``recgen ingest DIR``, ``recgen index DIR``, ``recgen demo --out DIR``,
``recgen serve DIR``) holds one catalog::

    DIR/recgen.db                  the SQLite store (also the embedding and generation cache)
    DIR/bad_rows.csv               rows the last ingest rejected, with file, row and column
    DIR/model/manifest.json        Recgen.save(DIR / "model")                (required to serve)
    DIR/generators/manifest.json   ContentGenerator.save(DIR / "generators")  (blurbs, previews)
    DIR/report.html, metrics.json  what `recgen demo` writes

:class:`Workdir` names these paths; :func:`resolve_directory` finds the model and generator
folders of a saved directory (``DIR`` may also be the model folder itself);
:func:`directory_version` is the fingerprint services compare to notice a re-save.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from recgen._io import MANIFEST as MANIFEST_FILE
from recgen.errors import ArtifactError

__all__ = ["BATCH_JOB_FILE", "BATCH_PARTS_SUFFIX", "ModelPaths", "Workdir", "directory_version",
           "resolve_directory"]

STORE_FILE = "recgen.db"
BAD_ROWS_FILE = "bad_rows.csv"
MODEL_DIR = "model"
GENERATORS_DIR = "generators"
REPORT_FILE = "report.html"
METRICS_FILE = "metrics.json"
#: A resumable batch job writes ``<output>.parts/`` holding ``_job.json`` and its chunks.
BATCH_PARTS_SUFFIX = ".parts"
BATCH_JOB_FILE = "_job.json"


@dataclass(frozen=True)
class Workdir:
    """Paths of one working folder (nothing is created or checked).

    >>> Workdir("shop").model
    PosixPath('shop/model')
    """

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def store(self) -> Path:
        """The default SQLite store."""
        return self.root / STORE_FILE

    @property
    def bad_rows(self) -> Path:
        return self.root / BAD_ROWS_FILE

    @property
    def model(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def generators(self) -> Path:
        return self.root / GENERATORS_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    def store_url(self, url: str | None = None) -> str | Path:
        """``url`` when given (any SQLAlchemy URL), else the folder's SQLite file."""
        return url or self.store


@dataclass(frozen=True)
class ModelPaths:
    """Where the parts of a saved recgen directory are."""

    model: Path
    generators: Path | None


def resolve_directory(directory: str | Path, generators: str | Path | None | bool = None) -> ModelPaths:
    """Find the model (and generator) folders of a saved recgen directory.

    Parameters
    ----------
    directory : path
        A working folder holding ``model/`` (as written by ``recgen index`` or ``recgen demo``)
        or the model folder itself (its sibling ``generators`` folder is then used).
    generators : path, bool or None
        ``None`` (default): use the ``generators`` folder next to the model if it exists.
        ``False``: never load generators. ``True``: they must exist. A path: that folder
        (must exist).

    Raises
    ------
    ArtifactError
        Neither ``directory`` nor ``directory/model`` holds a saved model, or the
        generators asked for are missing.
    """
    directory = Path(directory)
    work = Workdir(directory)
    if (work.model / MANIFEST_FILE).is_file():
        model, base = work.model, work
    elif (directory / MANIFEST_FILE).is_file():
        model, base = directory, Workdir(directory.parent)
    else:
        raise ArtifactError(
            f"{directory} is not a saved recgen directory: neither {work.model / MANIFEST_FILE} nor "
            f"{directory / MANIFEST_FILE} exists. Fit and save a model first (`recgen index DIR` or Recgen.save)")
    if generators is False:
        gen = None
    elif generators is None or generators is True:
        gen = base.generators if (base.generators / MANIFEST_FILE).is_file() else None
        if generators is True and gen is None:
            raise ArtifactError(f"no trained generators found at {base.generators}; train them with "
                                f"ContentGenerator(...).fit(model, catalog).save('{base.generators}')")
    else:
        gen = Path(generators)
        if not (gen / MANIFEST_FILE).is_file():
            raise ArtifactError(f"generators={gen} has no {MANIFEST_FILE}; pass the folder ContentGenerator.save wrote")
    return ModelPaths(model=model, generators=gen)


def directory_version(directory: str | Path, generators: str | Path | None | bool = None) -> str:
    """Short fingerprint of a saved recgen directory: the first 12 hex digits of the sha256 of
    ``model/manifest.json`` (followed by ``generators/manifest.json`` when generators are used).

    Manifests are written last and list the checksum of every file (nested manifests
    included), so the fingerprint changes whenever any saved byte does; reading it costs two
    small file reads, which is what services poll to notice a re-save.

    Raises
    ------
    ArtifactError
        The directory is not a saved recgen directory, or a manifest cannot be read (for
        instance in the instant a save swaps the new directory in).
    """
    paths = resolve_directory(directory, generators)
    h = hashlib.sha256()
    for part in (paths.model, paths.generators):
        if part is None:
            continue
        try:
            h.update((part / MANIFEST_FILE).read_bytes())
        except OSError as exc:
            raise ArtifactError(f"cannot read {part / MANIFEST_FILE}: {exc.strerror or exc}") from exc
        h.update(b"\0")
    return h.hexdigest()[:12]
