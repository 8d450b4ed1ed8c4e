"""Atomic file writes and checksummed JSON manifests shared by every savable class."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
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
    manifest = json.loads(json.dumps(manifest, default=str))  # what will be read back
    manifest["digest"] = _manifest_digest(manifest)
    atomic_write_json(directory / MANIFEST, manifest)


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON without its ``digest`` field.

    Catches an edited or corrupted manifest (a changed config, a swapped checksum). It is
    not a signature: whoever can write the directory can recompute it.
    """
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    recover_directory(directory)
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
    if manifest.get("digest") != _manifest_digest(manifest):
        raise ArtifactError(
            f"{path} was edited or corrupted: its digest does not match its content"
            + ("" if "digest" in manifest else " (it has none: saved by an older recgen?)")
            + f". Save the {kind} again instead of editing its manifest"
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


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call is not available (another OS, old libc, a filesystem
    without support); the caller then falls back to two renames.
    """
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
    if not _renameat2:
        return False
    import ctypes

    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


@contextlib.contextmanager
def _locked(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``directory`` (no lock file is created).

    Serializes saves (and clean-ups) of artefacts in the same folder across threads and
    processes, so one save never removes another's files in progress. Yields whether the
    lock is held: False with ``wait=False`` when someone else holds it. Where flock is not
    available it yields True and locks nothing.
    """
    try:
        import fcntl

        fd = os.open(directory, os.O_RDONLY)
    except (ImportError, OSError):
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            got = True
        except BlockingIOError:
            got = False
        except OSError:  # a filesystem without flock
            got = True
        yield got
    finally:
        os.close(fd)  # releases the lock


def _siblings(target: Path, suffix: str) -> list[Path]:
    """Temp siblings that :func:`save_directory` makes for ``target`` (oldest first).

    Matched exactly (``.NAME.`` + mkdtemp's 8 random characters + suffix), so the leftovers
    of ``model.v2`` are never taken for those of ``model``.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}{re.escape(suffix)}")
    found = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _recover_locked(target: Path) -> None:
    """With the folder locked: undo what a killed :func:`save_directory` left behind.

    * ``.NAME.*.old`` with ``target`` missing: the two-rename fallback was killed between its
      renames; the newest ``.old`` is the last complete version and goes back in place.
    * every other ``.NAME.*.tmp`` / ``.NAME.*.old``: an unfinished new version or an old one
      whose removal was cut short; both are removed.
    """
    olds = _siblings(target, ".old")
    if not target.exists() and olds:
        os.replace(olds.pop(), target)
        _fsync_dir(target.parent)
    import shutil

    for p in olds + _siblings(target, ".tmp"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def recover_directory(target: str | os.PathLike[str]) -> bool:
    """Undo what a killed :func:`save_directory` of ``target`` left behind; True if ``target`` exists.

    Puts the last complete version back when a kill between the two renames of the fallback
    path left ``target`` missing, and removes unfinished or superseded temp copies. The
    loaders call it (through :func:`read_manifest`), so the next run recovers by itself; it
    never waits for a save in progress unless ``target`` is missing.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return False
    missing = not target.exists()
    if not missing and not (_siblings(target, ".tmp") or _siblings(target, ".old")):
        return True
    with _locked(target.parent, wait=missing) as got:
        if got:
            with contextlib.suppress(OSError):  # a read-only folder: nothing to repair there
                _recover_locked(target)
    return target.exists()


def save_directory(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Build an artefact directory in a temp sibling, then swap it in place of ``target``.

    ``writer(tmpdir)`` writes every file, manifest included. The old directory stays intact
    until the new one is complete and fsynced; then the two are exchanged in one atomic
    ``renameat2(RENAME_EXCHANGE)``, so a reader, or a process killed at any point, sees either
    the complete old or the complete new directory, never neither and never a mix. Where the
    exchange is not available it falls back to two renames, and a kill between them is undone
    by :func:`recover_directory` (run by the loaders and by the next save).

    Saves into the same folder are serialized by a lock on the folder, and each save first
    removes what earlier killed saves left behind, so the next run recovers by itself.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent):
        _recover_locked(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            writer(tmp)
            _fsync_dir(tmp)
            if target.exists() and _exchange(tmp, target):
                _fsync_dir(target.parent)  # tmp now holds the old version
            else:
                old = None
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
                    old.rmdir()  # only the unique name is wanted
                    os.replace(target, old)
                os.replace(tmp, target)
                _fsync_dir(target.parent)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
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
