"""Atomic file writes and checksummed JSON manifests shared by every savable class."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np

from recgen.errors import ArtifactError

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    held = contextlib.ExitStack()
    with _locked(target.parent):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        held.enter_context(_locked(tmp_path))  # ours while written: no clean-up takes it
        # temp files of earlier writes of this target that were killed before their rename
        _recover_locked(target, keep=tmp_path)
    try:
        with held:
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


def _manifest_bytes(directory: Path) -> bytes | None:
    try:
        return (directory / MANIFEST).read_bytes()
    except OSError:
        return None


def read_manifest(directory: str | os.PathLike[str], *, kind: str, verify: bool = True) -> dict[str, Any]:
    """Read and check a manifest written by :func:`write_manifest`.

    A save that swaps a new version in while the files are being checked is noticed (the
    manifest changed meanwhile) and the check starts again on the new version.

    Raises
    ------
    ArtifactError
        When the directory or manifest is missing, of another kind or format version,
        edited by hand (its digest does not match), or a listed file is absent or does not
        match its checksum.
    """
    directory = Path(directory)
    for attempt in range(_ATTEMPTS):
        before = _manifest_bytes(directory)
        try:
            return _read_manifest_once(directory, kind=kind, verify=verify)
        except ArtifactError:
            if attempt == _ATTEMPTS - 1 or before is None or _manifest_bytes(directory) == before:
                raise  # the same version fails every time: the error is real
            log.info("%s was replaced while being read; reading it again", directory)
    raise AssertionError("unreachable")


_ATTEMPTS = 5


def load_consistent(directory: str | os.PathLike[str], load: Callable[[], T]) -> T:
    """Run ``load()`` (which reads ``directory`` file by file) and make sure no save swapped a
    new version in meanwhile: the manifest must be the same before and after. Retried a few
    times; raises :class:`ArtifactError` if the directory keeps changing.
    """
    directory = Path(directory)
    for _ in range(_ATTEMPTS):
        before = _manifest_bytes(directory)
        out = load()
        if before is not None and _manifest_bytes(directory) == before:
            return out
        log.info("%s was replaced while being loaded; loading it again", directory)
    raise ArtifactError(f"{directory} was replaced {_ATTEMPTS} times while being loaded; load it again "
                        "once the saves stop")


def _read_manifest_once(directory: Path, *, kind: str, verify: bool) -> dict[str, Any]:
    path = directory / MANIFEST
    recover_directory(directory)
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a saved recgen {kind}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    except RecursionError:  # a crafted manifest nested 100k deep: refuse it, never crash
        raise ArtifactError(f"{path} is nested too deeply to be a recgen manifest") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "recgen":
        raise ArtifactError(f"{path} is not a recgen manifest")
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{directory} holds a saved {manifest.get('kind')!r}, expected {kind!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {manifest.get('format_version')!r}; this recgen reads {FORMAT_VERSION}"
        )
    if "digest" not in manifest:
        # saved before manifests carried a digest: the file checksums below still hold
        log.warning("%s has no digest (saved by an older recgen); save it again to add one", path)
    elif manifest["digest"] != _manifest_digest(manifest):
        raise ArtifactError(
            f"{path} was edited or corrupted: its digest does not match its content. "
            f"Save the {kind} again instead of editing its manifest"
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
_renameat2: Any = None  # None: not looked up yet; False: unavailable


def _lookup_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return False  # ctypes.CDLL(None) itself fails on Windows; macOS has renamex_np instead
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28, musl >= 1.2.3
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    except Exception:  # noqa: BLE001 - any failure means: use the two-rename fallback
        return False


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call is not available or refused (another OS, an old libc, a
    filesystem without support, a sandbox that blocks it); the caller then falls back to two
    renames, which report their own errors.
    """
    global _renameat2
    fn = _renameat2
    if fn is None:
        fn = _renameat2 = _lookup_renameat2()
    if not fn:
        return False
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


class _FolderLock:
    """One folder's lock: a thread lock within this process plus ``flock`` across processes.

    Re-entrant for the thread that holds it (a save whose writer saves a nested artefact
    into the folder it holds does not wait for itself); flock is taken once per process and
    released with ``LOCK_UN`` (not only by closing), so a child forked meanwhile does not keep
    it held.
    """

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


# an entry lives as long as some thread holds or waits for it
_FOLDER_LOCKS: "weakref.WeakValueDictionary[tuple[int, int], _FolderLock]" = weakref.WeakValueDictionary()
_FOLDER_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _locked(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``directory`` (no lock file is created).

    Yields whether the lock is held: False with ``wait=False`` when another thread or process
    holds it. Where the folder cannot be opened or flock is unavailable, only the thread
    lock is taken.
    """
    try:
        st = os.stat(directory)
    except OSError:
        yield True
        return
    with _FOLDER_LOCKS_GUARD:
        lock = _FOLDER_LOCKS.get((st.st_dev, st.st_ino))
        if lock is None:
            lock = _FOLDER_LOCKS[(st.st_dev, st.st_ino)] = _FolderLock()
    if not lock.thread_lock.acquire(blocking=wait):
        yield False
        return
    try:
        if lock.depth == 0:
            try:
                import fcntl

                fd = os.open(directory, os.O_RDONLY)
            except (ImportError, OSError):
                fd = None
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    os.close(fd)
                    yield False
                    return
                except OSError:  # a filesystem without flock: the thread lock still holds
                    pass
            lock.fd = fd
        lock.depth += 1
        try:
            yield True
        finally:
            lock.depth -= 1
            if lock.depth == 0 and lock.fd is not None:
                fd, lock.fd = lock.fd, None
                with contextlib.suppress(OSError):
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
    finally:
        lock.thread_lock.release()


# The one rule for what a killed write leaves: ".NAME." + tempfile's 8 random characters +
# ".tmp" (a file of atomic_path or a folder of save_directory) or ".old" (always a folder: the
# previous version save_directory moved aside). recover_directory and `recgen doctor --fix`
# both use it, so a user's own ".notes.2024.old" (or a file named like an old version) is never
# taken for a leftover.
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}(?P<kind>\.tmp|\.old)")


def _leftover_kind(entry: os.DirEntry, name: str | None = None) -> str | None:
    """``".tmp"`` / ``".old"`` when ``entry`` is a leftover (of target ``name``, when given), else None."""
    m = _LEFTOVER.fullmatch(entry.name)
    if m is None or (name is not None and m.group("name") != name):
        return None
    if m.group("kind") == ".old":
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                return ".old"
        return None
    return ".tmp"


def _siblings(target: Path) -> dict[str, list[Path]]:
    """Temp siblings that :func:`save_directory` and :func:`atomic_path` make for ``target``, by
    suffix (``.tmp``, ``.old``), oldest first; one listing of the folder.

    Matched exactly (``.NAME.`` + mkdtemp's 8 random characters + suffix), so the leftovers
    of ``model.v2`` are never taken for those of ``model``. Entries that vanish while being
    listed (another process finishing its save) are skipped.
    """
    found: dict[str, list[tuple[float, Path]]] = {".tmp": [], ".old": []}
    with os.scandir(target.parent) as it:
        for entry in it:
            kind = _leftover_kind(entry, target.name)
            if kind:
                with contextlib.suppress(OSError):
                    found[kind].append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
    return {k: [p for _, p in sorted(v)] for k, v in found.items()}


def _is_recgen_artefact(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest written by :func:`write_manifest`."""
    try:
        with open(folder / MANIFEST, "rb") as fh:
            head = fh.read(1 << 16)
        return json.loads(head).get("format") == "recgen"
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def find_leftovers(folder: str | os.PathLike[str], *, targets: tuple[str, ...] = ()) -> list[Path]:
    """Leftovers of killed atomic writes under ``folder``, by :func:`save_directory`'s rule.

    Only what recgen itself may have left is listed, so that a user's own file or folder that
    merely looks like a leftover is never touched:

    * a leftover must sit in a recgen artefact folder (one with a recgen manifest), or be a
      temp copy of one of ``targets`` (names directly in ``folder``, e.g. a working folder's
      ``model`` and ``metrics.json``);
    * a ``.old`` must itself be a complete recgen artefact (the previous version of a save);
    * a temp copy that a write in progress holds (its lock is taken) is not a leftover.

    Symlinked folders are not followed.
    """
    root = Path(folder)
    out: list[Path] = []
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        managed = _is_recgen_artefact(here)
        for entry in entries:
            kind = _leftover_kind(entry)
            if kind is not None:
                path = Path(entry.path)
                name = _LEFTOVER.fullmatch(entry.name).group("name")
                ours = managed or (here == root and name in targets)
                if ours and (kind == ".tmp" or _is_recgen_artefact(path)) and not _locked_elsewhere(path):
                    out.append(path)
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return sorted(out)


def remove_leftovers(folder: str | os.PathLike[str], *, targets: tuple[str, ...] = ()) -> list[Path]:
    """Recover every target whose killed writes :func:`find_leftovers` lists, as the next load or
    save of it would (:func:`recover_directory`, folder lock held); returns what was listed.

    A complete previous version moved aside by a save killed between its two renames is put
    back; other leftovers are removed; temp copies of writes in progress are left alone.
    """
    found = find_leftovers(folder, targets=targets)
    by_target: dict[Path, list[Path]] = {}
    for path in found:
        by_target.setdefault(path.parent / _LEFTOVER.fullmatch(path.name).group("name"), []).append(path)
    for target, paths in sorted(by_target.items()):
        # the newest previous version first: it is the one a missing target gets back
        paths.sort(key=lambda p: (not p.name.endswith(".old"), -_mtime(p)))
        with contextlib.suppress(OSError):
            with _locked(target.parent):
                for path in paths:
                    if not path.exists() and not path.is_symlink() or _locked_elsewhere(path):
                        continue
                    if path.name.endswith(".old") and not target.exists() and not target.is_symlink():
                        os.replace(path, target)
                        _fsync_dir(target.parent)
                    else:
                        _remove(path)
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _locked_elsewhere(path: Path) -> bool:
    with _locked(path, wait=False) as free:
        return not free


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _recover_locked(target: Path, keep: Path | None = None) -> None:
    """With the folder locked: undo what a killed :func:`save_directory` left behind.

    * ``.NAME.*.old`` with ``target`` missing: the two-rename fallback was killed between its
      renames; the newest ``.old`` is the last complete version and goes back in place.
    * other ``.NAME.*.old``: an old version whose removal was cut short: removed.
    * ``.NAME.*.tmp``: removed unless a save in progress holds it (its own lock is tried
      without waiting) or it is ``keep`` (the caller's own).
    """
    leftovers = _siblings(target)
    olds = leftovers[".old"]
    if not target.exists() and not target.is_symlink() and olds:
        os.replace(olds.pop(), target)
        _fsync_dir(target.parent)
    for p in olds:
        _remove(p)
    for p in leftovers[".tmp"]:
        if keep is not None and p.name == keep.name:
            continue
        with _locked(p, wait=False) as free:
            if free:
                _remove(p)


def recover_directory(target: str | os.PathLike[str]) -> bool:
    """Undo what a killed :func:`save_directory` of ``target`` left behind; True if ``target`` exists.

    Puts the last complete version back when a kill between the two renames of the fallback
    path left ``target`` missing, and removes unfinished or superseded temp copies. The
    loaders call it (through :func:`read_manifest`), so the next run recovers by itself. It
    never waits for a save in progress unless ``target`` is missing, and a folder it may not
    list or change is left as it is.
    """
    target = Path(target)
    try:
        missing = not target.exists()
        if not missing and not any(_siblings(target).values()):
            return True
        with _locked(target.parent, wait=missing) as got:
            if got:
                _recover_locked(target)
    except OSError:  # cannot look or cannot repair: nothing to recover from here
        pass
    return target.exists()


def save_directory(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Build an artefact directory in a temp sibling, then swap it in place of ``target``.

    ``writer(tmpdir)`` writes every file, manifest included. The old directory stays intact
    until the new one is complete and fsynced; then the two are exchanged in one atomic
    ``renameat2(RENAME_EXCHANGE)``, so a process killed at any point leaves either the
    complete old or the complete new directory, never neither and never a mix. Where the
    exchange is not available it falls back to two renames, and a kill between them is undone
    by :func:`recover_directory` (run by the loaders and by the next save).

    The temp directory is locked while it is written (so a concurrent clean-up never takes
    it for a leftover); the folder is locked only for the clean-up and the swap. A symlinked
    ``target`` is saved into the directory it points to, and the link is kept.
    """
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    held = contextlib.ExitStack()
    with _locked(target.parent):  # a clean-up elsewhere must never see tmp before it is locked
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        held.enter_context(_locked(tmp))
    try:
        with held:
            writer(tmp)
            _fsync_dir(tmp)
            with _locked(target.parent):
                _recover_locked(target, keep=tmp)
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
                        _remove(old)
    finally:
        _remove(tmp)
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


# -- torch networks and optimizers ------------------------------------------------------------

TORCH_WEIGHTS = "weights.safetensors"
TORCH_OPTIMIZER = "optimizer.safetensors"


def save_torch_state(directory: str | os.PathLike[str], *, kind: str, modules: Mapping[str, Any],
                     optimizers: Mapping[str, Any] | None = None, config: dict[str, Any]) -> Path:
    """Save torch networks (and their optimizers' state) with a checksummed manifest, atomically.

    The one persistence path of every trainable part (preview and blurb generators, the
    image projection). No pickle: tensors go to safetensors, everything else to the manifest.

    Parameters
    ----------
    directory : path
        Replaced atomically (see :func:`save_directory`).
    kind : str
        The manifest's ``kind``; :func:`load_torch_state` refuses another.
    modules : mapping of str to torch.nn.Module
        Written to ``weights.safetensors`` as ``"<name>.<state-dict key>"``. Names must not
        contain a dot.
    optimizers : mapping of str to torch.optim.Optimizer, optional
        Their per-parameter state tensors go to ``optimizer.safetensors`` as
        ``"<name>.<param index>.<state key>"``, their ``param_groups`` (hyper-parameters) to the
        manifest, so a fit can resume exactly.
    config : dict
        JSON-able settings stored in the manifest; the key ``"torch_state"`` is reserved (it
        lists the networks and holds the optimizers' param groups).

    Returns
    -------
    Path
        ``directory``. Modules and optimizers are not changed (their tensors are copied).

    Raises
    ------
    ValueError
        A name with a dot, or ``config`` uses the reserved key.
    ArtifactError
        An optimizer holds non-tensor per-parameter state (it cannot go to safetensors).
    """
    from safetensors.torch import save_file

    if "torch_state" in config:
        raise ValueError("config must not have a 'torch_state' key: save_torch_state writes it")
    for name in [*modules, *(optimizers or {})]:
        if not name or "." in name:
            raise ValueError(f"module and optimizer names must be non-empty and without dots; got {name!r}")
    weights: dict[str, Any] = {}
    for name, module in modules.items():
        for k, v in module.state_dict().items():
            weights[f"{name}.{k}"] = v.detach().to("cpu", copy=True).contiguous()
    files: dict[str, dict[str, Any]] = {TORCH_WEIGHTS: weights}
    groups: dict[str, Any] = {}
    if optimizers:
        opt_tensors: dict[str, Any] = {}
        for name, opt in optimizers.items():
            state = opt.state_dict()
            groups[name] = state["param_groups"]
            for pid, st in state["state"].items():
                for k, v in st.items():
                    if not hasattr(v, "detach"):
                        raise ArtifactError(f"optimizer {name} has non-tensor state {k!r}; cannot save it")
                    opt_tensors[f"{name}.{pid}.{k}"] = v.detach().to("cpu", copy=True).contiguous()
        files[TORCH_OPTIMIZER] = opt_tensors
    full = {**config, "torch_state": {"modules": list(modules), "optimizers": groups}}

    def write(tmp: Path) -> None:
        for fname, tensors in files.items():
            with atomic_path(tmp / fname) as p:
                save_file(tensors, str(p))
        write_manifest(tmp, kind=kind, files=sorted(files), config=full)

    return save_directory(directory, write)


def load_torch_state(directory: str | os.PathLike[str], *, kind: str,
                     modules: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
                     optimizers: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
                     verify: bool = True, device: str | None = None) -> dict[str, Any]:
    """Load what :func:`save_torch_state` wrote into ``modules`` (and ``optimizers``), in place.

    Parameters
    ----------
    directory : path
    kind : str
        The expected manifest kind.
    modules : mapping of str to torch.nn.Module, or callable
        The networks to fill, by the names they were saved under. A callable gets the
        manifest's ``config`` and returns the mapping: networks whose sizes are in the
        manifest are built there (it is called again if a save swaps a new version in while
        this reads).
    optimizers : mapping of str to torch.optim.Optimizer, or callable, optional
        The same for optimizers (the callable runs after ``modules``'s); None skips the
        optimizer state.
    verify : bool
        Check every file against the manifest's checksums (:func:`read_manifest`).
    device : str, optional
        Where tensors are read to before being copied into the networks (default CPU).

    Returns
    -------
    dict
        The manifest (its ``config`` is what was saved, plus ``"torch_state"``).

    Raises
    ------
    ArtifactError
        Missing, tampered or incomplete directory, another kind, or weights that do not fit
        the networks (missing, unexpected or mis-shaped tensors; errors of ``modules``).

    Notes
    -----
    Directories written before this function existed load too: single networks saved
    without a name prefix, and the preview generator's separate ``discriminator.safetensors``
    with its optimizer groups under ``config["optimizers"]``.
    """
    from safetensors.torch import load_file

    directory = Path(directory)

    def once() -> dict[str, Any]:
        manifest = read_manifest(directory, kind=kind, verify=verify)
        config = manifest["config"]
        try:
            mods = modules if isinstance(modules, Mapping) else modules(config)
            opts = optimizers if optimizers is None or isinstance(optimizers, Mapping) else optimizers(config)
            state = config.get("torch_state")
            tensors: dict[str, Any] = {}
            for fname in sorted(manifest["files"]):  # older layouts split the networks over files
                if fname.endswith(".safetensors") and fname != TORCH_OPTIMIZER:
                    tensors.update(load_file(str(directory / fname), device=device or "cpu"))
            if state is None and len(mods) == 1:
                (name,) = mods
                if not any(k.startswith(f"{name}.") for k in tensors):  # one network, saved unprefixed
                    tensors = {f"{name}.{k}": v for k, v in tensors.items()}
            for name, module in mods.items():
                module.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")})
            extra = sorted({k.split(".", 1)[0] for k in tensors} - set(mods))
            if extra:
                raise ValueError(f"it holds weights of networks {extra} that were not given "
                                 f"(given: {sorted(mods)})")
            if opts:
                if TORCH_OPTIMIZER not in manifest["files"]:
                    raise ValueError(f"it was saved without optimizer state ({TORCH_OPTIMIZER})")
                groups = state["optimizers"] if state is not None else config["optimizers"]
                opt_tensors = load_file(str(directory / TORCH_OPTIMIZER), device=device or "cpu")
                for name, opt in opts.items():
                    per_param: dict[int, dict[str, Any]] = {}
                    for k, v in opt_tensors.items():
                        if k.startswith(f"{name}."):
                            _, pid, key = k.split(".", 2)
                            per_param.setdefault(int(pid), {})[key] = v
                    opt.load_state_dict({"state": per_param, "param_groups": groups[name]})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{directory}: the saved {kind} does not fit its manifest or networks: {exc}") from exc
        return manifest

    return load_consistent(directory, once)
