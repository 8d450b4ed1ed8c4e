"""The HTML pages users open, in a real browser (issue 14, item 4): headless Chromium.

* ``recgen demo``'s and ``recgen evaluate``'s ``report.html``, opened from disk as a user opens
  them: every ``<img>`` decodes (``naturalWidth > 0``), nothing is fetched but the file itself
  (thumbnails and previews are data URIs), no console error, and every table and plot of the
  HTML is laid out with a non-zero size.
* The service's ``/docs`` (Swagger UI) and ``/redoc`` on a real ``recgen serve`` process with an
  API key: the pages draw the API from ``/openapi.json`` with assets served by the service
  itself (FastAPI's default pages load them from a CDN, so offline they stayed blank).

Chromium is driven over the DevTools protocol on a pipe (``tests/cdp_browser.py``, stdlib only).
A screenshot of each page is saved next to the test's files (``tmp_path``).
"""
from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from cdp_browser import HeadlessChromium
from conftest import require_system

# every image (waiting for any still decoding), table and plot of the page, with its laid-out size
PAGE_FACTS = """(async () => {
  await Promise.all([...document.images].map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  const size = e => { const r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  return {
    images: [...document.images].map(i => ({alt: i.alt, cls: i.className, natural: [i.naturalWidth, i.naturalHeight],
                                           shown: size(i)})),
    tables: [...document.querySelectorAll('table')].map(t => ({rows: t.rows.length, cols: t.rows[0].cells.length,
        shown: size(t), emptyCells: [...t.querySelectorAll('td')].filter(c => !c.textContent.trim()).length})),
    plots: [...document.querySelectorAll('svg')].map(s => ({shown: size(s),
        marks: s.querySelectorAll('polyline, rect, circle, line').length})),
    cards: document.querySelectorAll('.card').length,
    scrollWidth: document.documentElement.scrollWidth, viewportWidth: window.innerWidth,
  };
})()"""


def chromium_or_skip() -> str:
    """Path of the Chromium binary; skips without it (fails under ``RECGEN_REQUIRE_SYSTEM=1``, as in CI)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    require_system("chromium", exe is not None, "no `chromium` on PATH (Debian package `chromium`)")
    return exe


@pytest.fixture
def browser(tmp_path):
    with HeadlessChromium(chromium_or_skip(), workdir=tmp_path / "chromium") as b:
        yield b


@pytest.fixture(scope="module")
def demo_report(demo_out) -> Path:
    """``recgen demo``'s report with generated previews (the shared run: 2 users, 1 generator epoch)."""
    chromium_or_skip()
    return demo_out / "report.html"


EVAL_CONFIG = """
[data]
dataset = "sample"
store = "store.db"
[split]
kind = "global_time"
test_fraction = 0.15
val_fraction = 0.15
[evaluation]
k = 10
n_boot = 100
examples = 2
generate = true
generator_epochs = 1
[[variants]]
name = "popularity"
kind = "popularity"
[[variants]]
name = "random"
kind = "random"
[[variants]]
name = "recgen content"
kind = "recgen"
"""


@pytest.fixture(scope="module")
def evaluate_report(_warm_store, tmp_path_factory) -> Path:
    """``recgen evaluate``'s report (3 variants, 2 example users with previews), on a warm embedding cache."""
    chromium_or_skip()
    from recgen.evaluation.harness import load_config, run_evaluation

    folder = tmp_path_factory.mktemp("evaluate")
    shutil.copy2(_warm_store / "recgen.db", folder / "store.db")
    (folder / "c.toml").write_text(EVAL_CONFIG)
    return run_evaluation(load_config(folder / "c.toml"), folder / "out", echo=lambda s: None).html


def open_report(browser: HeadlessChromium, report: Path, screenshot: Path) -> tuple[dict, object]:
    page = browser.new_page()
    page.navigate(report.resolve().as_uri())
    facts = page.evaluate(PAGE_FACTS)
    page.screenshot(screenshot)
    return facts, page


def check_report(facts: dict, page, report: Path) -> None:
    source = report.read_text(encoding="utf-8")
    assert page.console_errors() == []
    # self-contained: the file itself is the only thing fetched, every image is a data URI
    assert [r["url"] for r in page.requests() if not r["url"].startswith("data:")] == [report.resolve().as_uri()]
    # every <img> of the HTML is there and decoded, and laid out with a size
    assert len(facts["images"]) == source.count("<img ") > 0
    broken = [i for i in facts["images"] if min(i["natural"]) == 0 or min(i["shown"]) == 0]
    assert broken == [], broken
    # every table and plot is drawn, with a header row and a data row at least
    assert len(facts["tables"]) == source.count("<table") > 0
    for t in facts["tables"]:
        assert t["rows"] >= 2 and t["cols"] >= 2 and min(t["shown"]) > 0 and t["emptyCells"] == 0, t
    assert len(facts["plots"]) == source.count("<svg") > 0
    for p in facts["plots"]:
        assert min(p["shown"]) > 0 and p["marks"] > 0, p


def test_demo_report_renders(browser, demo_report, tmp_path):
    facts, page = open_report(browser, demo_report, tmp_path / "demo-report.png")
    check_report(facts, page, demo_report)
    # 2 users: history and recommendation cards, each with its item image; generated previews shown
    assert facts["cards"] >= 8
    previews = [i for i in facts["images"] if i["cls"] == "pv"]
    assert previews and all(i["shown"] == [72, 72] for i in previews)


def test_evaluate_report_renders(browser, evaluate_report, tmp_path):
    facts, page = open_report(browser, evaluate_report, tmp_path / "evaluate-report.png")
    check_report(facts, page, evaluate_report)
    assert facts["cards"] >= 8 and any(i["cls"] == "pv" for i in facts["images"])


KEY = "browser-test-key-0123456789"


@pytest.fixture(scope="module")
def served_docs(saved_workdir, tmp_path_factory):
    """``recgen serve`` with an API key: the docs must load without one."""
    chromium_or_skip()
    from recgen_adapters.testing import serve_subprocess

    folder = tmp_path_factory.mktemp("serve-docs")
    (folder / "keys.txt").write_text(KEY + "\n")
    with serve_subprocess(saved_workdir, log_path=folder / "serve.log",
                          args=["--api-key-file", str(folder / "keys.txt")]) as served:
        yield served.url


def _operations(base: str) -> int:
    with urllib.request.urlopen(base + "/openapi.json", timeout=10) as r:
        spec = json.load(r)
    methods = {"get", "post", "put", "delete", "patch", "head", "options"}
    return sum(1 for ops in spec["paths"].values() for m in ops if m in methods)


def _same_origin_and_ok(page, base: str) -> None:
    """Offline, as in production: every request stays on the service and succeeds."""
    reqs = page.requests()
    assert reqs, "the page made no request"
    # (inline data: images fetch nothing; ReDoc starts its web worker from a blob: URL of the page's origin)
    elsewhere = [r["url"] for r in reqs if not r["url"].startswith("data:")
                 and not r["url"].removeprefix("blob:").startswith(base + "/")]
    assert elsewhere == [], f"the docs page fetches from outside the service: {elsewhere}"
    failed = [r for r in reqs if r["failed"] or (r["status"] or 0) >= 400]
    assert failed == [], failed
    assert page.console_errors() == []


def test_swagger_docs_load_offline(browser, served_docs, tmp_path):
    page = browser.new_page()
    page.navigate(served_docs + "/docs")
    n_ops = _operations(served_docs)
    # Swagger UI fetches /openapi.json after the load event and then draws one block per operation
    shown = page.wait_for(f"document.querySelectorAll('.opblock').length >= {n_ops} && "
                          "document.querySelectorAll('.opblock').length")
    page.screenshot(tmp_path / "docs.png")
    assert shown == n_ops
    assert "recgen" in page.evaluate("document.querySelector('.information-container .title').textContent")
    assert page.evaluate("getComputedStyle(document.querySelector('.swagger-ui .opblock')).borderStyle") == "solid"
    _same_origin_and_ok(page, served_docs)


def test_redoc_loads_offline(browser, served_docs, tmp_path):
    page = browser.new_page()
    page.navigate(served_docs + "/redoc")
    n_ops = _operations(served_docs)
    # ReDoc renders one section per operation, ids "operation/<operationId>"
    shown = page.wait_for(f"document.querySelectorAll('[id^=\"operation/\"]').length >= {n_ops} && "
                          "document.querySelectorAll('[id^=\"operation/\"]').length")
    page.screenshot(tmp_path / "redoc.png")
    assert shown == n_ops
    _same_origin_and_ok(page, served_docs)


def test_every_openapi_reference_resolves(saved_workdir):
    """Regression (issue 14): /search's body schema referred to "#/$defs/Modality", which the OpenAPI
    document does not have, and ReDoc stopped on "Invalid reference token: $defs"."""
    from recgen_adapters.service.app import create_app

    spec = create_app(saved_workdir).openapi()

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    found = sorted(set(refs(spec)))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve in /openapi.json"
            node = node[part]


def test_docs_pages_and_their_files_are_served_without_a_key(saved_workdir):
    """In-process, without a browser: the pages name only the service's own files, and those
    answer 200 without a key on a service whose other routes need one (FastAPI's defaults
    point at public CDNs, unreachable offline)."""
    import re

    from fastapi.testclient import TestClient

    from recgen_adapters.service.app import create_app
    from recgen_adapters.service.settings import ServiceConfig

    with TestClient(create_app(saved_workdir, ServiceConfig(api_keys=(KEY,)))) as client:
        assert client.get("/recommend").status_code == 401
        for page in ("/docs", "/redoc"):
            r = client.get(page)
            assert r.status_code == 200
            urls = re.findall(r"""(?:src|href)=["']([^"']+)""", r.text) + re.findall(r"url: *'([^']+)'", r.text)
            assert urls and all(u.startswith("/") for u in urls), urls
            for u in urls:
                got = client.get(u)
                assert got.status_code == 200 and len(got.content) > 0, (u, got.status_code)


def test_one_epoch_loss_plot_is_not_empty():
    """Regression (issue 14, seen in the browser): a loss series of one value (``--generator-epochs 1``)
    was skipped, leaving the demo's loss plot an empty frame; it is now a dot with its legend."""
    from recgen.report import line_plot_svg

    svg = line_plot_svg({"loss": [0.7], "kl": [0.2, 0.1]})
    assert svg.count("<circle") == 1 and svg.count("<polyline") == 1 and "loss (0.7 -> 0.7)" in svg
