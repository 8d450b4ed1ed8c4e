"""Atomic file writes and checksummed JSON manifests shared by every savable class."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from recgen.errors import ArtifactError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform / filesystem
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it over ``target``.

    The temp file lives in the same directory so the final ``os.replace`` is atomic: a
    reader sees either the old file or the complete new one, never a partial write.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as pretty JSON to ``target`` atomically."""
    atomic_write_bytes(target, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_save_npy(target: str | os.PathLike[str], array: np.ndarray) -> None:
    """``np.save`` to ``target`` atomically (no pickled objects allowed)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """``np.load`` with pickles refused, turning a refusal into :class:`ArtifactError`."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ArtifactError(f"cannot read array file {path}: {exc}") from exc


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose formats a saved artefact depends on."""
    import importlib.metadata as md

    out = {}
    for name in ("recgen", "numpy", "faiss-cpu", "faiss-gpu", "torch", "sentence-transformers"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def write_manifest(directory: Path, *, kind: str, files: list[str], config: dict[str, Any]) -> None:
    """Write ``manifest.json`` last, with a checksum of every file of the artefact.

    Because it is written last (atomically), a directory whose manifest lists matching
    checksums is complete; anything else is a crash mid-save or tampering.
    """
    manifest = {
        "format": "recgen",
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        "config": config,
        "files": {name: sha256_file(directory / name) for name in files},
    }
    atomic_write_json(directory / MANIFEST, manifest)


def read_manifest(directory: str | os.PathLike[str], *, kind: str, verify: bool = True) -> dict[str, Any]:
    """Read and check a manifest written by :func:`write_manifest`.

    Raises
    ------
    ArtifactError
        When the directory or manifest is missing, of another kind or format version,
        or a listed file is absent or does not match its checksum.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a saved recgen {kind}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != "recgen":
        raise ArtifactError(f"{path} is not a recgen manifest")
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{directory} holds a saved {manifest.get('kind')!r}, expected {kind!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {manifest.get('format_version')!r}; this recgen reads {FORMAT_VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"{path} has no 'files' table")
    for name, digest in files.items():
        fpath = (directory / name).resolve()
        if directory.resolve() not in fpath.parents:
            raise ArtifactError(f"{path} lists {name!r}, which points outside {directory}")
        if not fpath.is_file():
            raise ArtifactError(f"{directory} is incomplete: {name} is missing")
        if verify and sha256_file(fpath) != digest:
            raise ArtifactError(f"{fpath} does not match the checksum in {path}: the file was changed or corrupted")
    return manifest


def save_directory(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Build an artefact directory in a temp sibling, then swap it in place of ``target``.

    ``writer(tmpdir)`` writes every file, manifest included. The old directory, if any,
    stays intact until the new one is complete; the swap is two renames.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        writer(tmp)
        _fsync_dir(tmp)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            old.rmdir()  # only the unique name is wanted
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if old is not None:
            import shutil

            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def save_weights_directory(directory: str | os.PathLike[str], *, kind: str, tensors: dict[str, Any],
                           config: dict[str, Any]) -> Path:
    """Save one safetensors weights file plus a checksummed manifest, atomically.

    The shared shape of every single-network artefact (projection, PETER...).
    """
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        with atomic_path(tmp / "weights.safetensors") as p:
            save_file(tensors, str(p))
        write_manifest(tmp, kind=kind, files=["weights.safetensors"], config=config)

    return save_directory(directory, write)
