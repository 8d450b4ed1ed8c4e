"""The HTTP service under concurrent load: hot reload with an atomic swap, and memory under sustained load.

Real uvicorn servers on 127.0.0.1 only; every request loop is bounded in count and in time.

* Hot reload: client threads hammer ``/recommend`` and ``/items/{id}/similar`` while the main
  thread alternately saves model A and model B (A with items removed) into the served
  directory and calls ``POST /admin/reload``. No 5xx, only A's and B's versions are seen,
  and every answer is exactly the answer of the version its ``X-Recgen-Model-Version``
  header names (so no request ever saw a mix of the two).
* A failed reload (tampered or incomplete directory) keeps the old version serving, answers
  409 with the reason and counts the failure in ``/metrics``; ``reload_interval`` polling
  picks up a re-save by itself.
* Sustained load: 8 clients for ~8 s against a ``recgen serve`` process; zero 5xx, and its
  resident memory (VmRSS) grows by less than a generous bound.
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from recgen import Recgen  # noqa: E402
from recgen import Enricher  # noqa: E402
from recgen.workdir import directory_version  # noqa: E402
from recgen_adapters.service import MODEL_VERSION_HEADER, ServiceConfig, create_app  # noqa: E402
from recgen_adapters.testing import free_port  # noqa: E402

KEY = "concurrency-key-0123"
HEADERS = {"X-API-Key": KEY}
K = 8


# ------------------------------------------------------------------------ helpers
class _ThreadServer:
    """uvicorn serving an app in a daemon thread on 127.0.0.1 (started and stopped within bounded time)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "_ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 60 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _vmrss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


# ------------------------------------------------------------------ two versions
@pytest.fixture(scope="module")
def versions(saved_workdir):
    """Model A (the fitted sample model) and B (A without the items A ranks highest for the
    queries below), the queries, and each version's exact answers to them."""
    a = Recgen.load(saved_workdir / "model", use_gpu=False)
    b = Recgen.load(saved_workdir / "model", use_gpu=False)
    items = [str(i) for i in a.items.ids[:6]]
    users = [str(u) for u in a.profiles.user_ids_[:4]]
    queries = [("similar", i) for i in items] + [("recommend", u) for u in users]

    def answers(model):
        out = {}
        for kind, q in queries:
            ids, _ = model.similar_items(q, K) if kind == "similar" else model.recommend(q, K)
            out[(kind, q)] = [str(x) for x in ids]
        return out

    expected_a = answers(a)
    removed = sorted({x for ids in expected_a.values() for x in ids[:3]} - set(items))
    b.remove_items(removed)
    expected_b = answers(b)
    assert all(not set(removed) & set(ids) for ids in expected_b.values())
    assert expected_a != expected_b
    return {"A": a, "B": b, "queries": queries, "expected": {"A": expected_a, "B": expected_b}, "removed": removed}


@pytest.fixture()
def served_dir(tmp_path, versions) -> Path:
    """A served directory holding model A (no generators: B's items differ from theirs)."""
    versions["A"].save(tmp_path / "served" / "model")
    return tmp_path / "served"


def _call(client: "httpx.Client", kind: str, q: str) -> "httpx.Response":
    if kind == "similar":
        return client.get(f"/items/{q}/similar", params={"k": K})
    return client.post("/recommend", json={"user_id": q, "k": K})


# ------------------------------------------------------------------------- tests
def test_hot_reload_under_load_never_mixes_versions(served_dir, versions):
    app = create_app(served_dir, ServiceConfig(api_keys=(KEY,)))
    label = {directory_version(served_dir): "A"}
    seen: list[tuple[int, str | None, tuple, list[str] | None]] = []
    errors: list[str] = []
    stop = threading.Event()
    queries = versions["queries"]

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
            for _ in range(3000):  # bounded count; the stop event bounds the time
                if stop.is_set():
                    return
                kind, q = rng.choice(queries)
                try:
                    r = _call(client, kind, q)
                except httpx.HTTPError as exc:
                    errors.append(f"{kind} {q}: {exc!r}")
                    continue
                ids = [x["item_id"] for x in r.json()["items"]] if r.status_code == 200 else None
                seen.append((r.status_code, r.headers.get(MODEL_VERSION_HEADER), (kind, q), ids))

    with _ThreadServer(app) as server:
        workers = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(4)]
        for w in workers:
            w.start()
        reloads = []
        try:
            with httpx.Client(base_url=server.base, timeout=120) as admin:
                assert admin.post("/admin/reload").status_code == 401  # keys are configured: the admin needs one
                deadline = time.monotonic() + 10
                for cycle in range(6):  # B, A, B, A, ... (bounded; each save + load takes a moment)
                    if time.monotonic() > deadline and cycle >= 2:
                        break
                    name = "B" if cycle % 2 == 0 else "A"
                    versions[name].save(served_dir / "model")
                    label.setdefault(directory_version(served_dir), name)
                    r = admin.post("/admin/reload", headers=HEADERS)
                    assert r.status_code == 200, r.text
                    reloads.append(r.json())
                    assert label[r.json()["model_version"]] == name
                    assert r.headers[MODEL_VERSION_HEADER] == r.json()["model_version"]
                    time.sleep(0.3)  # let some requests land on this version
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)

    assert not errors, errors[:5]
    assert len(seen) > 50, f"only {len(seen)} requests completed"
    statuses = {s for s, *_ in seen}
    assert statuses == {200}, sorted(statuses)
    labels_seen = set()
    for status, version, query, ids in seen:
        assert version in label, f"response labelled {version!r}, which is neither A nor B ({label})"
        name = label[version]
        labels_seen.add(name)
        assert ids == versions["expected"][name][query], (name, query, ids)
        if name == "B":
            assert not set(ids) & set(versions["removed"])
    assert labels_seen == {"A", "B"}
    assert [x["status"] for x in reloads] == ["reloaded"] * len(reloads)


def test_failed_reload_keeps_serving_the_old_version(served_dir, versions):
    cfg = ServiceConfig(api_keys=(KEY,))
    with TestClient(create_app(served_dir, cfg), headers=HEADERS) as client:
        version_a = client.get("/healthz").json()["model_version"]
        assert version_a == directory_version(served_dir)
        item = versions["queries"][0][1]
        assert client.get(f"/items/{item}/similar", params={"k": K}).headers[MODEL_VERSION_HEADER] == version_a
        assert client.post("/admin/reload").json()["status"] == "unchanged"

        # tampered: B saved, then one of its files changed behind the manifest's back
        versions["B"].save(served_dir / "model")
        victim = next(p for p in sorted((served_dir / "model").glob("*.npy")))
        victim.write_bytes(victim.read_bytes() + b"tampered")
        r = client.post("/admin/reload")
        assert r.status_code == 409, r.text
        assert "still serving model " + version_a in r.text and "checksum" in r.text
        ok = client.get(f"/items/{item}/similar", params={"k": K})
        assert ok.status_code == 200 and ok.headers[MODEL_VERSION_HEADER] == version_a
        assert [x["item_id"] for x in ok.json()["items"]] == versions["expected"]["A"][("similar", item)]
        assert client.get("/healthz").json()["model_version"] == version_a

        # incomplete: the manifest is gone (an interrupted copy, say)
        (served_dir / "model" / "manifest.json").unlink()
        r = client.post("/admin/reload")
        assert r.status_code == 409 and "still serving" in r.text
        metrics = client.get("/metrics").text
        assert 'recgen_model_reloads_total{result="failed"} 2.0' in metrics
        assert client.get("/healthz").headers[MODEL_VERSION_HEADER] == version_a

        # a good save afterwards is picked up again
        versions["B"].save(served_dir / "model")
        r = client.post("/admin/reload")
        assert r.status_code == 200 and r.json()["previous_version"] == version_a
        assert client.get("/healthz").json()["model_version"] == directory_version(served_dir) != version_a


def test_reload_interval_polls_the_manifest(served_dir, versions):
    with TestClient(create_app(served_dir, ServiceConfig(reload_interval=0.2))) as client:
        version_a = client.get("/healthz").json()["model_version"]
        versions["B"].save(served_dir / "model")
        version_b = directory_version(served_dir)
        assert version_b != version_a
        deadline = time.monotonic() + 60
        while client.get("/healthz").json()["model_version"] != version_b:
            assert time.monotonic() < deadline, "the poller did not pick up the re-saved model in 60 s"
            time.sleep(0.1)
        removed = versions["removed"][0]
        assert client.get(f"/items/{removed}/similar").status_code == 404
        assert 'recgen_model_reloads_total{result="reloaded"} 1.0' in client.get("/metrics").text


def test_reload_of_an_in_memory_model_is_refused(versions):
    with TestClient(create_app(Enricher(versions["A"]))) as client:
        r = client.post("/admin/reload")
        assert r.status_code == 409 and "in-memory" in r.text
        assert client.get("/healthz").headers[MODEL_VERSION_HEADER] == "unsaved"


def test_sustained_load_no_5xx_bounded_memory(saved_workdir, tmp_path, sample):
    from recgen_adapters.testing import serve_subprocess

    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(KEY + "\n")
    rng = np.random.default_rng(0)
    users = sample.interactions["user_id"].drop_duplicates().to_numpy()
    items = sample.items["item_id"].to_numpy()
    with serve_subprocess(saved_workdir, log_path=tmp_path / "serve.log",
                          args=["--api-key-file", str(keyfile), "--log-level", "warning"]) as served:
        base, proc = served.url, served.process

        def request(client, i: int) -> "httpx.Response":
            kind = i % 3
            if kind == 0:
                rows = [{"user_id": str(u), "item_id": str(it)}
                        for u, it in zip(rng.choice(users, 20), rng.choice(items, 20))]
                return client.post("/enrich", json={"candidates": rows})
            if kind == 1:
                return client.post("/recommend", json={"user_id": str(users[i % len(users)]), "k": 10})
            return client.get(f"/items/{items[i % len(items)]}/similar", params={"k": 10})

        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as warm:
            for i in range(150):  # warm-up: imports, thread pool, allocator arenas
                assert request(warm, i).status_code == 200
        rss_start = _vmrss_kib(proc.pid)

        codes: list[int] = []
        failures: list[str] = []
        end = time.monotonic() + 8

        def client_loop(seed: int) -> None:
            with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
                for i in range(seed, seed + 5000):  # bounded count and time
                    if time.monotonic() > end:
                        return
                    try:
                        codes.append(request(client, i).status_code)
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=client_loop, args=(1000 * j,), daemon=True) for j in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        rss_end = _vmrss_kib(proc.pid)

    assert not failures, failures[:5]
    assert len(codes) > 100, f"only {len(codes)} requests in 8 s"
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    growth_mib = (rss_end - rss_start) / 1024
    assert growth_mib < 100, f"server RSS grew {growth_mib:.1f} MiB over {len(codes)} requests"
