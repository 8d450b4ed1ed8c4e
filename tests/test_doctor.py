"""`recgen doctor DIR`: a healthy workdir passes; tampering, index drift and leftovers are found."""
from __future__ import annotations

import shutil

import pytest

from recgen.doctor import diagnose


@pytest.fixture()
def workdir(saved_workdir, sample, tmp_path):
    from recgen.catalog import CatalogStore

    work = tmp_path / "work"
    shutil.copytree(saved_workdir, work)
    with CatalogStore(work / "recgen.db") as st:
        st.ingest(sample)
    return work


def _status(checks):
    return {c.name: c.status for c in checks}


def test_healthy_workdir(workdir):
    checks = diagnose(workdir)
    assert _status(checks) == {"store": "ok", "model": "ok", "generators": "ok", "indexes": "ok",
                               "store vs model": "ok", "leftovers": "ok"}, [str(c) for c in checks]


def test_tampered_model_file_fails(workdir):
    target = next(p for p in sorted((workdir / "model").rglob("*")) if p.is_file() and p.name != "manifest.json")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    st = _status(diagnose(workdir))
    assert st["model"] == "fail" and "indexes" not in st


def test_index_drift_and_leftovers_and_cli(workdir):
    from typer.testing import CliRunner

    from recgen.cli import app
    from recgen.model import Recgen

    model = Recgen.load(workdir / "model")
    model.indexes["fused"].remove([model.items.ids[0]])      # an index out of step with the items
    model.save(workdir / "model")
    (workdir / ".model.abc123.tmp").mkdir()                   # what a killed save leaves behind
    checks = diagnose(workdir)
    st = _status(checks)
    assert st["indexes"] == "fail" and st["leftovers"] == "warn"
    assert "1 items missing from the index" in next(c.detail for c in checks if c.name == "indexes")
    res = CliRunner().invoke(app, ["doctor", str(workdir), "--fix"])
    assert res.exit_code == 1 and "removed 1 leftovers" in res.output
    assert not (workdir / ".model.abc123.tmp").exists()


def test_store_ahead_of_model_warns(workdir, sample):
    from recgen.catalog import CatalogStore

    extra = sample.items.head(1).assign(item_id="NEW-ITEM")
    with CatalogStore(workdir / "recgen.db") as st:
        st.ingest(items=extra)
    checks = diagnose(workdir)
    assert _status(checks)["store vs model"] == "warn"
    assert "1 stored items are not served yet" in next(c.detail for c in checks if c.name == "store vs model")
