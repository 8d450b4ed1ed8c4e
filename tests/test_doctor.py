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
    # what a killed write leaves behind (not of the model: loading the model recovers its own)
    (workdir / ".metrics.json.abc12345.tmp").write_text("{")
    checks = diagnose(workdir)
    st = _status(checks)
    assert st["indexes"] == "fail" and st["leftovers"] == "warn"
    assert "1 items missing from the index" in next(c.detail for c in checks if c.name == "indexes")
    res = CliRunner().invoke(app, ["doctor", str(workdir), "--fix"])
    assert res.exit_code == 1 and "cleaned up 1 leftover(s)" in res.output
    assert not (workdir / ".metrics.json.abc12345.tmp").exists()


def test_store_ahead_of_model_warns(workdir, sample):
    from recgen.catalog import CatalogStore

    extra = sample.items.head(1).assign(item_id="NEW-ITEM")
    with CatalogStore(workdir / "recgen.db") as st:
        st.ingest(items=extra)
    checks = diagnose(workdir)
    assert _status(checks)["store vs model"] == "warn"
    assert "1 stored items are not served yet" in next(c.detail for c in checks if c.name == "store vs model")


def test_fix_never_touches_a_save_in_progress(workdir):
    """Regression (issue 12): `doctor --fix` deleted the temp folder of a running save."""
    import threading

    from recgen._io import save_directory

    started, release = threading.Event(), threading.Event()
    seen: list = []

    def writer(tmp):
        (tmp / "part.bin").write_bytes(b"first half")
        seen.append(tmp)
        started.set()
        assert release.wait(30)
        (tmp / "part2.bin").write_bytes(b"second half")

    t = threading.Thread(target=lambda: save_directory(workdir / "artefact", writer))
    t.start()
    try:
        assert started.wait(30)
        tmp = seen[0]
        checks = diagnose(workdir, fix=True)
        assert tmp.is_dir() and (tmp / "part.bin").is_file(), "doctor --fix removed a save in progress"
        assert _status(checks)["leftovers"] == "ok", [str(c) for c in checks]
    finally:
        release.set()
        t.join(30)
    assert (workdir / "artefact" / "part2.bin").read_bytes() == b"second half"
    assert not tmp.exists()


def test_fix_keeps_user_files_that_only_look_like_leftovers(workdir):
    """Regression (issue 12): `doctor --fix` deleted a user's own ``.notes.2024.old`` (and, with a
    rule over the whole folder, would rename or delete user folders named like leftovers)."""
    import json

    own_files = [workdir / ".notes.2024.old", workdir / ".notes.20241231.old", workdir / "model.old",
                 workdir / ".x.tmp", workdir / "sub" / ".config.yaml.mybackup.tmp"]
    own_dirs = [workdir / ".photos.vacation.old", workdir / ".notes.20240101.old", workdir / ".drafts.abcdefgh.tmp"]
    (workdir / "sub").mkdir()
    (workdir / "sub" / "config.yaml").write_text("mine")
    (workdir / "notes").write_text("mine")
    for p in own_files:
        p.write_text("mine")
    for d in own_dirs:
        d.mkdir()
        (d / "file.txt").write_text("mine")
    # an old version of the generators that a save killed between its two renames moved aside
    real = workdir / ".generators.k3j9x0qa.old"
    real.mkdir()
    (real / "manifest.json").write_text(json.dumps({"format": "recgen", "kind": "content-generator"}))
    shutil.rmtree(workdir / "generators")
    checks = diagnose(workdir)
    leftovers = next(c for c in checks if c.name == "leftovers")
    assert leftovers.status == "warn" and "1 leftover" in leftovers.detail, leftovers
    diagnose(workdir, fix=True)
    assert all(p.read_text() == "mine" for p in own_files)
    assert all((d / "file.txt").read_text() == "mine" for d in own_dirs)
    assert not (workdir / "photos").exists()
    # its target is missing: it is put back, as the next load would do
    assert not real.exists() and (workdir / "generators" / "manifest.json").is_file()
    assert _status(diagnose(workdir))["leftovers"] == "ok"


def test_deeply_nested_manifest_is_a_finding_not_a_crash(workdir):
    """Regression (issue 14, item 5): a 100k-deep manifest.json crashed the CLI with a RecursionError."""
    from typer.testing import CliRunner

    from recgen.cli import app

    (workdir / "generators" / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    res = CliRunner().invoke(app, ["doctor", str(workdir)])
    assert res.exit_code == 1 and "nested too deeply" in res.output and "Traceback" not in res.output, res.output
    res = CliRunner().invoke(app, ["recommend", str(workdir), "U0001"])
    assert res.exit_code == 0, res.output   # the model itself is fine
    (workdir / "model" / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    res = CliRunner().invoke(app, ["recommend", str(workdir), "U0001"])
    assert res.exit_code == 2 and "nested too deeply" in res.output, res.output
