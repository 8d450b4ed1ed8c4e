"""Shared pytest fixtures."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each for torch / BLAS, not two each fighting over the cores
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def require_system(name: str, available: bool, reason: str) -> None:
    """Skip the calling test (or fixture) when a system component is absent.

    Under ``RECGEN_REQUIRE_SYSTEM=1`` (set by ``.ci/run`` after ``.ci/system-deps`` installed
    PostgreSQL, the JDK, Chromium and wrk) the test fails instead, so CI cannot skip it silently.
    Use: ``require_system("postgresql", shutil.which("initdb") is not None, "initdb not found")``.
    """
    if available:
        return
    message = f"{name} is not available: {reason}; install it with `sudo make system-deps`"
    if os.environ.get("RECGEN_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"{message} (RECGEN_REQUIRE_SYSTEM=1: a missing component fails instead of skipping)",
                    pytrace=False)
    pytest.skip(message)


_DEFAULT_TORCH_THREADS: list[int] = []  # torch's thread count before any fixture changed it


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny torch models on one thread, then restore the setting.

    Thread hand-offs cost more than they save on tiny models, and on a shared 2-core machine
    two threads can be several times slower than one. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    if not _DEFAULT_TORCH_THREADS:
        _DEFAULT_TORCH_THREADS.append(before)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def default_torch_threads():
    """Build a shared fitted fixture on torch's default thread count, whichever module asks first.

    A model fitted on one thread and on two differs in the last bits of its image vectors, and
    so in every cache key made from them: a session fixture first requested inside a
    ``one_torch_thread`` module would otherwise not match a refit made elsewhere.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(_DEFAULT_TORCH_THREADS[0] if _DEFAULT_TORCH_THREADS else before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real data sets (``RECGEN_SHARED_DATA`` or ``<repo>/../shared/data``).

    Skips the test when the folder is absent: the data sets are not redistributable and
    are not part of the repository.
    """
    env = os.environ.get("RECGEN_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path}; set RECGEN_SHARED_DATA to run this test")
    return path


# ---------------------------------------------------------------------------------------------
# Expensive fixtures are built once per test run, also under pytest-xdist: the first worker
# that needs one builds it in the run's shared temp folder under a file lock; the others wait
# and then use it (stores and working folders are copied per worker, so no two processes ever
# write to the same SQLite file or model folder).


def _shared_folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker has basetemp/../popen-gwN; their parent is this run's own folder
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _build_once(tmp_path_factory, name: str):
    """Yield ``(folder, built)`` with the lock held; mark it built when the block succeeds."""
    from filelock import FileLock

    folder = _shared_folder(tmp_path_factory) / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        done = folder / ".built"
        if not done.exists() and folder.exists():
            shutil.rmtree(folder)  # what a failed build left: start clean, so its real error shows again
        yield folder, done.exists()
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The bundled sample catalog (default size), drawn once per test run."""
    from recgen.datasets import make_sample_catalog

    with _build_once(tmp_path_factory, "sample") as (folder, built):
        if not built:
            make_sample_catalog(folder, seed=0)
    return make_sample_catalog(folder, seed=0)  # the stamped folder is read back, not drawn again


def copy_warm_store(warm: Path, dest: Path) -> Path:
    """Copy the warm store's SQLite files (``_warm_store``: closed since it was built, so the copy is
    consistent) into the folder ``dest``: a store, and embedding cache, with every text and image
    already encoded. Returns ``dest``."""
    for f in warm.glob("recgen.db*"):
        shutil.copy2(f, dest / f.name)
    return dest


@pytest.fixture(scope="session")
def _warm_store(sample, tmp_path_factory) -> Path:
    """One SQLite store of the sample catalog whose embedding cache holds every text and image."""
    from recgen import Recgen
    from recgen.catalog import CatalogStore

    with _build_once(tmp_path_factory, "store") as (folder, built):
        if not built:
            folder.mkdir(parents=True, exist_ok=True)
            with CatalogStore(folder / "recgen.db") as store, default_torch_threads():
                store.ingest(sample)
                Recgen().fit(store).save(folder / "model")  # fills the cache; saved_workdir reuses the model
    return folder


@pytest.fixture(scope="session")
def sample_store(_warm_store, tmp_path_factory):
    """A SQLite store holding the sample catalog, this worker's own copy of a warm embedding cache."""
    from recgen.catalog import CatalogStore

    dest = copy_warm_store(_warm_store, tmp_path_factory.mktemp("store"))
    store = CatalogStore(dest / "recgen.db")
    yield store
    store.close()


TINY_GENERATOR = {"image_size": 32, "epochs": 2, "base_channels": 8, "latent_dim": 8}


@pytest.fixture(scope="session")
def saved_workdir(sample, _warm_store, tmp_path_factory) -> Path:
    """A saved recgen directory as the adapters load it: ``model/`` + tiny ``generators/`` (a per-worker copy)."""
    from recgen import Recgen
    from recgen.generators import ContentGenerator, GenerationConfig

    with _build_once(tmp_path_factory, "work") as (folder, built):
        if not built:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copytree(_warm_store / "model", folder / "model")
            model = Recgen.load(folder / "model")
            cfg = GenerationConfig(image_generator="cvae", blurb_generator="grounded",
                                   image_overrides={**TINY_GENERATOR, "pairs_per_item": 1})
            ContentGenerator(cfg).fit(model, sample).save(folder / "generators")
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(folder / "model", work / "model")
    shutil.copytree(folder / "generators", work / "generators")
    return work


@pytest.fixture(scope="session")
def demo_out(_warm_store, tmp_path_factory) -> Path:
    """The folder of one ``recgen demo`` run (2 users, 1 generator epoch, warm embedding cache), shared
    read-only by the tests of its report: ``report.html``, ``metrics.json``, ``model/``, ``generators/``."""
    from recgen.demo import run_demo

    with _build_once(tmp_path_factory, "demo") as (folder, built):
        if not built:
            folder.mkdir(parents=True, exist_ok=True)
            copy_warm_store(_warm_store, folder)  # the demo's store doubles as the embedding cache
            with default_torch_threads():
                res = run_demo("sample", out=folder, n_users=2, generator_epochs=1, progress=False,
                               echo=lambda s: None)
            # metrics.json holds exactly what run_demo returned
            assert json.loads((folder / "metrics.json").read_text()) == json.loads(json.dumps(res.metrics))
    return folder


@pytest.fixture(scope="session")
def sample_model(saved_workdir):
    """The default Recgen fitted on the sample store (loaded from ``saved_workdir``; do not mutate it)."""
    from recgen import Recgen

    return Recgen.load(saved_workdir / "model")


@pytest.fixture(scope="session")
def candidates(sample):
    """Candidate rows with known, unknown and missing ids, an int column and a duplicate pair."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    users = sample.interactions["user_id"].drop_duplicates().to_numpy()
    items = sample.items["item_id"].to_numpy()
    n = 300
    df = pd.DataFrame({"user_id": rng.choice(users, n), "item_id": rng.choice(items, n),
                       "cf_score": rng.normal(size=n).astype("float64"), "rank": np.arange(n) % 50})
    df.loc[3, "user_id"] = "NOBODY"
    df.loc[4, "item_id"] = "NO-ITEM"
    df.loc[5] = df.loc[6]
    return df


# kill-point summaries (tests/test_killpoints.py), printed at the end of the run so CI's log
# shows how many kill points each operation survived. Under xdist the tests run in workers, so
# the summaries go through a file in the run's shared folder to the controller that prints them.
_KILLPOINTS_FILE = "killpoint-summaries.jsonl"


def record_killpoint_summaries(tmp_path_factory, summaries: list[dict]) -> None:
    import json

    from filelock import FileLock

    path = _shared_folder(tmp_path_factory) / _KILLPOINTS_FILE
    with FileLock(str(path) + ".lock"), open(path, "a", encoding="utf-8") as fh:
        for s in summaries:
            fh.write(json.dumps(s) + "\n")


def pytest_terminal_summary(terminalreporter):
    import json

    factory = getattr(terminalreporter.config, "_tmp_path_factory", None)
    path = factory.getbasetemp() / _KILLPOINTS_FILE if factory is not None else None
    if path is None or not path.is_file():
        return
    terminalreporter.section("kill points (SIGKILL, then the next run recovers)")
    for line in path.read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        terminalreporter.write_line(
            f"{s['op']:<13} {s['kills']} kills ({s['hooked']} by hooks at file primitives and commits, the rest timed) "
            f"over {s['points']} runs; state right after the kill: {s['states_after_kill']}; "
            f"failures: {len(s['failures'])}")
