"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The bundled sample catalog (default size), written once per test session."""
    from recgen.datasets import make_sample_catalog

    return make_sample_catalog(tmp_path_factory.mktemp("sample"), seed=0)


@pytest.fixture(scope="session")
def sample_store(sample, tmp_path_factory):
    """A SQLite store holding the sample catalog; its embedding cache is shared by the session."""
    from recgen.catalog import CatalogStore

    store = CatalogStore(tmp_path_factory.mktemp("store") / "recgen.db")
    store.ingest(sample)
    yield store
    store.close()


TINY_GENERATOR = {"image_size": 32, "epochs": 2, "base_channels": 8, "latent_dim": 8}


@pytest.fixture(scope="session")
def saved_workdir(sample, sample_store, tmp_path_factory) -> Path:
    """A saved recgen directory as the adapters load it: ``model/`` + tiny ``generators/``."""
    from recgen import Recgen
    from recgen.generators.personalized import ContentGenerator, GenerationConfig

    work = tmp_path_factory.mktemp("work")
    model = Recgen().fit(sample_store)
    model.save(work / "model")
    cfg = GenerationConfig(image_generator="cvae", blurb_generator="grounded",
                           image_overrides={**TINY_GENERATOR, "pairs_per_item": 1})
    ContentGenerator(cfg).fit(model, sample).save(work / "generators")
    return work


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
# shows how many kill points each operation survived
KILLPOINT_SUMMARIES: list[dict] = []


def pytest_terminal_summary(terminalreporter):
    if KILLPOINT_SUMMARIES:
        terminalreporter.section("kill points (SIGKILL, then the next run recovers)")
        for s in KILLPOINT_SUMMARIES:
            terminalreporter.write_line(
                f"{s['op']:<13} {s['kills']} kills ({s['hooked']} by hooks at file primitives and commits, the rest timed) "
                f"over {s['points']} runs; state right after the kill: {s['states_after_kill']}; "
                f"failures: {len(s['failures'])}")
