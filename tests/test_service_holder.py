"""The service's model holder (``recgen_adapters.service.holder``), tested without FastAPI.

Plain Python: the holder loads a saved directory, reloads it when asked or when a poller
sees its fingerprint change, swaps each new model in with one assignment, and keeps the old
one serving when a reload fails. A last test checks, in a child process, that the holder
imports without FastAPI and that the service's public names raise MissingExtraError with
the ``pip install`` line when the extra is missing.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from recgen import Enricher, Recgen
from recgen.errors import ArtifactError
from recgen.workdir import directory_version
from recgen_adapters.service.holder import UNSAVED_VERSION, ModelHolder, Served


@pytest.fixture(scope="module")
def model_b(saved_workdir) -> Recgen:
    """The saved sample model without its first five items: another valid version."""
    b = Recgen.load(saved_workdir / "model", use_gpu=False)
    b.remove_items([str(i) for i in b.items.ids[:5]])
    return b


@pytest.fixture()
def served_dir(saved_workdir, tmp_path) -> Path:
    """A copy of the saved model alone (no generators: model B's items differ from theirs)."""
    shutil.copytree(saved_workdir / "model", tmp_path / "served" / "model")
    return tmp_path / "served"


def _tamper(directory: Path) -> None:
    victim = sorted((directory / "model").glob("*.npy"))[0]
    victim.write_bytes(victim.read_bytes() + b"tampered")


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.05)


def test_current_is_the_loaded_snapshot(served_dir):
    holder = ModelHolder(served_dir)
    served = holder.current()
    assert isinstance(served, Served)
    assert served.version == served.enricher.model_version == directory_version(served_dir)
    assert served.item_ids == set(served.enricher.model.items.ids.tolist())
    assert holder.current() is served  # no copy per read
    assert holder.directory == str(served_dir.resolve())
    assert holder.counts == {"reloaded": 0, "unchanged": 0, "failed": 0}


def test_reload_is_unchanged_until_forced(served_dir):
    swapped, results = [], []
    holder = ModelHolder(served_dir, on_swap=swapped.append, on_reload=results.append)
    first = holder.current()
    out = holder.reload()
    assert (out.status, out.model_version, out.previous_version) == ("unchanged", first.version, first.version)
    assert holder.current() is first
    out = holder.reload(force=True)
    assert (out.status, out.model_version, out.previous_version) == ("reloaded", first.version, first.version)
    assert holder.current() is not first and out.seconds >= 0
    assert results == ["unchanged", "reloaded"]
    assert swapped == [first, holder.current()]  # the first model is announced too
    assert holder.counts == {"reloaded": 1, "unchanged": 1, "failed": 0}


def test_reload_swaps_in_a_resaved_model_and_the_old_snapshot_stays_whole(served_dir, model_b):
    holder = ModelHolder(served_dir)
    old = holder.current()
    model_b.save(served_dir / "model")
    out = holder.reload()
    new = holder.current()
    assert out.status == "reloaded" and out.previous_version == old.version
    assert out.model_version == new.version == directory_version(served_dir) != old.version
    removed = old.item_ids - new.item_ids
    assert len(removed) == 5
    # a request that read the old snapshot still answers from the old model alone
    assert removed <= set(old.enricher.model.items.ids.tolist())
    assert len(old.enricher.model.items.ids) == len(new.enricher.model.items.ids) + 5


def test_failed_reload_keeps_the_old_model_and_is_counted(served_dir, model_b):
    results = []
    holder = ModelHolder(served_dir, on_reload=results.append)
    old = holder.current()
    model_b.save(served_dir / "model")
    _tamper(served_dir)  # a file changed behind the manifest's back
    with pytest.raises(ArtifactError, match="still serving model " + old.version) as info:
        holder.reload()
    assert "checksum" in str(info.value)
    assert holder.current() is old
    (served_dir / "model" / "manifest.json").unlink()  # incomplete: an interrupted copy, say
    with pytest.raises(ArtifactError, match="still serving model"):
        holder.reload()
    assert holder.current() is old
    assert holder.counts["failed"] == 2 and results == ["failed", "failed"]
    model_b.save(served_dir / "model")  # a good save afterwards is picked up again
    assert holder.reload().status == "reloaded"
    assert holder.current().version == directory_version(served_dir) != old.version


def test_in_memory_model_is_served_but_never_reloaded(model_b):
    holder = ModelHolder(Enricher(model_b), reload_interval=0.05)
    assert holder.current().version == UNSAVED_VERSION and holder.directory is None
    with pytest.raises(ArtifactError, match="in-memory"):
        holder.reload()
    assert holder.counts["failed"] == 0  # nothing was tried
    assert holder.start_polling() is False and not holder.polling


def test_no_poller_without_reload_interval(served_dir):
    holder = ModelHolder(served_dir)
    assert holder.start_polling() is False and not holder.polling
    holder.stop_polling()  # harmless when none runs


def test_reload_interval_is_validated_before_loading(tmp_path):
    with pytest.raises(ValueError, match="reload_interval must be a positive number"):
        ModelHolder(tmp_path / "not-loaded", reload_interval=0)


def test_poller_picks_up_a_resave_and_does_not_retry_a_failed_version(served_dir, model_b, saved_workdir):
    holder = ModelHolder(served_dir, reload_interval=0.05)
    try:
        assert holder.start_polling() and holder.polling
        assert holder.start_polling()
        assert [t.name for t in threading.enumerate()].count("recgen-reload-poll") == 1  # never a second thread
        model_b.save(served_dir / "model")
        version_b = directory_version(served_dir)
        _wait_for(lambda: holder.current().version == version_b, "the poller picked up the re-saved model")
        assert holder.counts["reloaded"] == 1
    finally:
        holder.stop_polling()
    assert not holder.polling

    # stopped while a tampered save goes in, so that it cannot pick up the good files in between
    Recgen.load(saved_workdir / "model", use_gpu=False).save(served_dir / "model")
    _tamper(served_dir)
    try:
        assert holder.start_polling()  # a stopped holder polls again (one app lifespan after another)
        _wait_for(lambda: holder.counts["failed"] == 1, "the poller tried the tampered save")
        time.sleep(0.5)  # ten more intervals: the same broken version is not tried again
        assert holder.counts["failed"] == 1
        assert holder.current().version == version_b
    finally:
        holder.stop_polling()


def test_holder_needs_no_fastapi_and_the_service_names_the_missing_extra():
    code = textwrap.dedent("""
        import sys
        import recgen_adapters.service.holder, recgen_adapters.service.settings
        loaded = sorted({"fastapi", "starlette", "prometheus_client"} & set(sys.modules))
        assert not loaded, f"the holder imported {loaded}"
        sys.modules["fastapi"] = None  # as if the serve extra were not installed
        from recgen.errors import MissingExtraError
        for name in ("create_app", "config_from_env"):
            try:
                getattr(__import__("recgen_adapters.service", fromlist=[name]), name)
            except MissingExtraError as exc:
                assert "pip install 'recgen[serve]'" in str(exc), str(exc)
            else:
                raise AssertionError(name + " imported without fastapi")
        try:
            import recgen_adapters.service.routes
        except MissingExtraError as exc:
            assert "pip install 'recgen[serve]'" in str(exc), str(exc)
        else:
            raise AssertionError("routes imported without fastapi")
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
