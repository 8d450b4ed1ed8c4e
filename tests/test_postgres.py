"""The store on a real PostgreSQL server (issue 14, item 2), started by these tests themselves.

The server comes from the Debian ``postgresql`` package (``.ci/system-deps`` installs it):
``initdb`` + ``pg_ctl`` in a fresh folder, on a free loopback port, with trust authentication
and no fsync. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user the package creates (``runuser``). Each test gets its own database.
Without PostgreSQL the tests skip with the reason (``RECGEN_REQUIRE_SYSTEM=1`` makes that a
failure, as in CI). The concurrency tests run on SQLite as well.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import require_system

from recgen.catalog import CatalogStore

REPO_ROOT = Path(__file__).resolve().parents[1]


# -- the server ----------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """Folder of initdb/pg_ctl: ``RECGEN_PG_BINDIR``, else PATH, else Debian's newest version."""
    env = os.environ.get("RECGEN_PG_BINDIR")
    if env:
        return Path(env) if (Path(env) / "initdb").is_file() else None
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """One throw-away PostgreSQL cluster; ``url(db)`` is a SQLAlchemy URL (SQLAlchemy 2.1 picks psycopg 3)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                require_system("postgresql", False, "running as root and there is no `postgres` user to run the "
                                                    "server as (the Debian package creates it)")
            self.run_as = "postgres"
        # not under pytest's tmp folder: that one is private to root, and the server runs as postgres
        self.folder = Path(tempfile.mkdtemp(prefix="recgen-pg-"))
        if self.run_as:
            u = pwd.getpwnam(self.run_as)
            os.chown(self.folder, u.pw_uid, u.pw_gid)
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = 0

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        r = self._run("initdb", "-D", str(self.data), "-U", "recgen", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        if r.returncode:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        for _attempt in range(5):  # a free port can be taken between probe and bind: try another
            self.port = _free_port()
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
            r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
            if r.returncode == 0:
                return
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{log[-3000:]}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://recgen@127.0.0.1:{self.port}/{database}"  # the documented form

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    """Session-scoped, so a missing PostgreSQL skips before the session fixtures (the fitted model) are built."""
    bindir = _pg_bindir()
    require_system("postgresql", bindir is not None,
                   "no initdb (Debian package `postgresql`; or set RECGEN_PG_BINDIR to its bin folder)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require_system("psycopg", False, "the Python driver is not installed: pip install -e '.[postgres]'")
    return bindir


@pytest.fixture(scope="module")
def pg_server(pg_bindir):
    server = _Server(pg_bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A SQLAlchemy URL of a new, empty database on the test server."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'recgen.db'}"
    return request.getfixturevalue("pg_server").create_database()


def _frames(n: int, *, title: str = "item") -> dict[str, pd.DataFrame]:
    """A small catalog without images: ``n`` items, a review and an interaction on each."""
    ids = [f"i{k:04d}" for k in range(n)]
    items = pd.DataFrame({"item_id": ids, "title": [f"{title} {k}" for k in range(n)],
                          "description": [f"about {k}" for k in range(n)],
                          "attributes": [{"k": k % 3} for k in range(n)]})
    reviews = pd.DataFrame({"item_id": ids, "user_id": [f"u{k % 7}" for k in range(n)], "rating": 4.0,
                            "text": [f"review of {k}" for k in range(n)], "timestamp": 1_700_000_000})
    inter = pd.DataFrame({"user_id": [f"u{k % 7}" for k in range(n)], "item_id": ids,
                          "timestamp": 1_700_000_000 + pd.RangeIndex(n), "event": "view"})
    return {"items": items, "reviews": reviews, "interactions": inter}


# -- round trip, idempotence, upsert -------------------------------------------------------


def test_ingest_round_trip_same_rows_and_hashes_as_sqlite(pg_bindir, sample, pg_url, tmp_path):
    with CatalogStore(tmp_path / "ref.db") as lite, CatalogStore(pg_url) as pg:
        assert pg.engine.dialect.name == "postgresql"
        r_lite, r_pg = lite.ingest(sample), pg.ingest(sample)
        assert str(r_pg) == str(r_lite)
        assert r_pg.items_added == len(sample.items) and r_pg.items_updated == 0
        assert pg.counts() == lite.counts() and pg.counts()["items"] == len(sample.items)
        for table in ("items", "reviews", "interactions"):
            pd.testing.assert_frame_equal(getattr(pg, table)(), getattr(lite, table)(), obj=table)
        # content hashes are computed from values, not from the backend
        assert pg.items()["content_hash"].tolist() == lite.items()["content_hash"].tolist()
        back = pg.catalog()
    assert sorted(back.items["item_id"]) == sorted(sample.items["item_id"].astype(str))


def test_reingest_is_a_no_op(pg_bindir, sample, pg_url):
    with CatalogStore(pg_url) as pg:
        pg.ingest(sample)
        before = pg.items()
        again = pg.ingest(sample)
        assert (again.items_added, again.items_updated, again.items_unchanged) == (0, 0, len(sample.items))
        assert again.reviews_added == 0 and again.interactions_added == 0
        after = pg.items()
    pd.testing.assert_frame_equal(after, before)


def test_upsert_updates_changed_items_only(pg_url):
    frames = _frames(20)
    with CatalogStore(pg_url) as pg:
        pg.ingest(**frames, check_images=False)
        hashes = pg.items().set_index("item_id")["content_hash"]
        changed = frames["items"].copy()
        changed.loc[[2, 5], "title"] = ["renamed 2", "renamed 5"]
        changed["attributes"] = [{"k": 99} if k == 7 else a for k, a in enumerate(changed["attributes"])]
        extra = pd.DataFrame({"item_id": ["new-1"], "title": ["brand new"]})
        res = pg.ingest(items=pd.concat([changed, extra], ignore_index=True), check_images=False)
        assert (res.items_added, res.items_updated, res.items_unchanged) == (1, 3, 17)
        got = pg.items().set_index("item_id")
    assert got.loc["i0002", "title"] == "renamed 2" and got.loc["i0005", "title"] == "renamed 5"
    assert got.loc["i0007", "attributes"] == {"k": "99"}  # attribute values are stored as text
    moved = [i for i in hashes.index if got.loc[i, "content_hash"] != hashes[i]]
    assert moved == ["i0002", "i0005", "i0007"]
    assert got.loc["new-1", "description"] == ""


# -- concurrent ingests (issue 14, item 7) -------------------------------------------------


def _meet_at_first(target, statement_start: str, barrier: threading.Barrier):
    """Hold a thread's first statement starting with ``statement_start`` until the other thread gets there.

    ``target`` is a store, an engine or the Engine class; returns the listener (to remove it).

    That is the interleaving of the bugs pinned below: both threads read (which tables exist,
    which items are stored), then both write. Code that locks before it reads never gets there
    while the other thread holds the lock; the barrier then times out and the first goes on.
    """
    done = threading.local()
    start = statement_start.upper()

    def _hold(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if " ".join(statement.split()).upper().startswith(start) and not getattr(done, "met", False):
            done.met = True
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass

    sa.event.listen(target.engine if isinstance(target, CatalogStore) else target, "before_cursor_execute", _hold)
    return _hold


def _in_two_threads(fn) -> list:
    results, errors = [None, None], []

    def run(k: int) -> None:
        try:
            results[k] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assert
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_two_concurrent_ingests_report_true_counts(store_url):
    """Regression (issue 14, item 7): two ingests of the same rows at once both reported all of them as added."""
    frames = _frames(300)
    n = len(frames["items"])
    CatalogStore(store_url).close()  # tables exist (their creation is the next test's race)
    barrier = threading.Barrier(2, timeout=3)

    def ingest():
        with CatalogStore(store_url) as st:
            _meet_at_first(st, "INSERT INTO items", barrier)
            return st.ingest(**frames, check_images=False)

    a, b = _in_two_threads(ingest)
    # the store itself was always right
    with CatalogStore(store_url) as st:
        assert st.counts() == {"items": n, "reviews": n, "interactions": n}
    # and now the counts add up: one ingest added everything, the other found it all stored
    assert sorted([a.items_added, b.items_added]) == [0, n], (str(a), str(b))
    assert a.items_added + a.items_unchanged == n and b.items_added + b.items_unchanged == n
    assert a.items_updated == b.items_updated == 0
    assert sorted([a.reviews_added, b.reviews_added]) == [0, n]
    assert sorted([a.interactions_added, b.interactions_added]) == [0, n]


def test_two_stores_create_a_new_database_at_once(store_url):
    """Regression: two first ingests into a new database at once failed with 'table items already exists'."""
    barrier = threading.Barrier(2, timeout=3)
    frames = _frames(10)
    # the constructor creates the tables on its own engine: hold CREATE TABLE on every engine
    hold = _meet_at_first(sa.engine.Engine, "CREATE TABLE items", barrier)

    def open_and_ingest():
        with CatalogStore(store_url) as st:
            return st.ingest(**frames, check_images=False).items_added

    try:
        added = _in_two_threads(open_and_ingest)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", hold)
    assert sorted(added) == [0, 10]


def test_two_concurrent_cli_ingests_of_one_file(pg_url, tmp_path):
    """Two ``recgen ingest`` processes on the same file and store at once: right store, counts that add up."""
    frames = _frames(400)
    path = tmp_path / "items.csv"
    frames["items"].drop(columns=["attributes"]).to_csv(path, index=False)
    cmd = [sys.executable, "-m", "recgen.cli", "ingest", str(tmp_path / "w"), "--items", str(path), "--store", pg_url]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    added = sorted(int(o.split("items: ", 1)[1].split(" added", 1)[0]) for o in outs)
    assert added == [0, len(path.read_text().splitlines()) - 1], outs
    with CatalogStore(pg_url) as st:
        assert st.counts()["items"] == 400


# -- recgen doctor -------------------------------------------------------------------------


def _doctor(*args: str):
    from typer.testing import CliRunner

    from recgen.cli import app

    return CliRunner().invoke(app, ["doctor", *args])


def test_doctor_against_postgresql(pg_bindir, sample, saved_workdir, pg_url, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(saved_workdir / "model", work / "model")
    with CatalogStore(pg_url) as st:
        st.ingest(sample)
    res = _doctor(str(work), "--store", pg_url)
    assert res.exit_code == 0, res.output
    store_line = next(line for line in res.output.splitlines() if line.lstrip().startswith("[ok] store") or
                      ("store" in line and "items" in line))
    assert f"items {len(sample.items)}" in store_line, res.output
    assert "the model serves exactly" in res.output, res.output

    # an item removed from the store after indexing: doctor notices, on PostgreSQL too
    with CatalogStore(pg_url) as st:
        st.remove_items([str(sample.items["item_id"].iloc[0])])
    res = _doctor(str(work), "--store", pg_url)
    assert "1 served items are no longer stored" in res.output, res.output


def test_doctor_reports_an_unreachable_database_without_the_password(pg_server, tmp_path):
    url = f"postgresql://recgen:s3cret-pw@127.0.0.1:{pg_server.port}/no_such_database"
    res = _doctor(str(tmp_path), "--store", url)
    assert res.exit_code == 1, res.output
    assert "cannot read the store" in res.output and "no_such_database" in res.output, res.output
    assert "s3cret-pw" not in res.output
