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
