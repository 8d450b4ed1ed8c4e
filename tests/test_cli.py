"""The command line, end to end on the sample catalog, and the demo."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import copy_warm_store

from recgen.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def workdir(saved_workdir, _warm_store, sample, tmp_path_factory):
    """A working folder as `recgen ingest` + `recgen index` leave it, copied from the shared fitted
    sample (tests/test_readme.py runs those two commands from scratch on a fresh folder)."""
    wd = copy_warm_store(_warm_store, tmp_path_factory.mktemp("cli"))
    shutil.copytree(saved_workdir / "model", wd / "model")
    wd.joinpath("sample-root").write_text(str(sample.image_root.parent))  # where this store's sample lives
    return wd


def test_help_explains_each_command():
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("ingest", "index", "recommend", "search", "enrich", "demo"):
        assert cmd in r.output
        sub = invoke(cmd, "--help")
        assert sub.exit_code == 0 and len(sub.output) > 200


def test_ingest_named_sample_dataset_into_a_fresh_folder(tmp_path):
    """`recgen ingest DIR --dataset sample` writes the shop into DIR/sample-data and stores it all."""
    r = invoke("ingest", tmp_path / "wd", "--dataset", "sample")
    assert r.exit_code == 0, r.output
    assert "items: 240 added" in r.output and (tmp_path / "wd" / "sample-data" / "items.csv").is_file()
    r = invoke("ingest", tmp_path / "wd2", "--dataset", "movielens")
    assert r.exit_code == 2 and "needs path=" in r.output


def test_reingest_is_idempotent(workdir):
    r = invoke("ingest", workdir, "--dataset", "sample", "--path", workdir.joinpath("sample-root").read_text())
    assert r.exit_code == 0, r.output
    assert "items: 0 added, 0 updated, 240 unchanged" in r.output


def test_recommend_and_search(workdir):
    r = invoke("recommend", workdir, "U0001", "-k", "5", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert len(out["ids"]) == 5 and out["scores"] == sorted(out["scores"], reverse=True)
    r = invoke("search", workdir, "teal striped mug", "--modality", "image", "-k", "3")
    assert r.exit_code == 0 and r.output.count("SKU-") == 3
    r = invoke("recommend", workdir, "nobody")
    assert r.exit_code == 2 and "nobody" in r.output


def test_enrich_parquet(workdir, tmp_path):
    cand = pd.DataFrame({"user_id": ["U0001", "U0001", "ghost"], "item_id": ["SKU-0001", "SKU-0002", "SKU-0003"],
                         "score": [3.0, 2.0, 1.0]})
    cand.to_parquet(tmp_path / "c.parquet")
    r = invoke("enrich", workdir, "--input", tmp_path / "c.parquet", "--output", tmp_path / "e.parquet")
    assert r.exit_code == 0, r.output
    assert "1 with an unknown user or item" in r.output
    out = pd.read_parquet(tmp_path / "e.parquet")
    assert list(out["score"]) == [3.0, 2.0, 1.0]
    assert out["recgen_sim_fused"].notna().tolist() == [True, True, False]


def test_errors_are_clear(tmp_path):
    r = invoke("recommend", tmp_path, "U1")
    assert r.exit_code == 2 and "recgen index" in r.output
    r = invoke("ingest", tmp_path)
    assert r.exit_code == 2 and "nothing to ingest" in r.output
    r = invoke("demo", "--dataset", "movielens", "--out", tmp_path / "d")
    assert r.exit_code == 2 and "path" in r.output


def test_ingest_reports_bad_rows(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "a", ""], "title": ["A", "dup", "no id"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    r = invoke("ingest", tmp_path / "wd", "--items", tmp_path / "items.csv")
    assert r.exit_code == 0, r.output
    assert "items.csv" in r.output and (tmp_path / "wd" / "bad_rows.csv").is_file()
    assert len(pd.read_csv(tmp_path / "wd" / "bad_rows.csv")) == 2
    r = invoke("ingest", tmp_path / "wd2", "--items", tmp_path / "items.csv", "--strict")
    assert r.exit_code == 1 and "nothing was stored" in r.output


def test_demo_writes_report(demo_out):
    html = (demo_out / "report.html").read_text()
    assert "Recovered tastes" in html and "data:image/jpeg;base64," in html and "recgen_sim" not in html
    assert "fused:" in html and "History" in html
    m = json.loads((demo_out / "metrics.json").read_text())
    assert m["taste_match@10"]["recgen"] > m["taste_match@10"]["chance"] + 0.3
    assert m["ranking"]["recgen (content, fused)"]["recall@20"] > m["ranking"]["random"]["recall@20"]
    assert m["alignment"]["trained"]["top1"] > 0.8
    # previews judged by judges the generators never see (issue 13): with a photo, the product is
    # kept (as sharp as the photo, colour read right) and identifies its item well above chance
    photo = m["previews"]["with_photo"]
    assert photo["identifiability"]["top5"] > 2 * photo["identifiability"]["chance_top5"]
    assert photo["sharpness_ratio"] >= 0.8 and photo["attributes"]["colour"] >= 0.9
    assert m["previews"]["text_only"]["n"] >= 2 and m["previews"]["hidden_items"]
    assert m["blurbs"]["faithfulness"] == 1.0
    # the two users' blurbs of one item each match their own user's history (swap test, CI above chance);
    # no BLEU/ROUGE without held-out references (against the item's own text they would judge nothing)
    assert m["blurbs"]["personalization_swap"]["ci_low"] > 0.5 and "rougeL_f" not in m["blurbs"]
    assert "personalization (swap test)" in html
    assert "generated preview" in html and "data:image/png;base64," in html and "<svg" in html
    # both judges' readings in the table and the plot (the strict one alone misreads a tinted backdrop)
    assert photo["attributes_page"]["pattern"] >= 0.9 and "with photo, page: pattern" in html
    assert "what each user sees" in html and "contrasting taste" in html  # the contact sheets
    assert "Items without a photo" in html and "real photo (hidden)" in html
    assert {"model", "generators", "report.html"} <= {p.name for p in demo_out.iterdir()}


def test_serve_gpu_without_gpu_support_fails_with_the_fix(saved_workdir):
    """`recgen serve --gpu` checks the GPU path before starting uvicorn and names what to install."""
    import faiss

    if hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        pytest.skip("this machine has faiss-gpu and a GPU: --gpu would start serving")
    r = invoke("serve", saved_workdir, "--gpu", "--port", "1")
    assert r.exit_code == 2 and "--gpu:" in r.output and "pip install" in r.output, r.output


def test_contact_sheet_captions_name_only_the_card_a_preview_shows():
    """A caption says "beside: X" only when the preview's card shows X. Before, it named the item the
    blurb names (``anchors``) under previews that, leaving no corner free, showed no card."""
    from types import SimpleNamespace

    from recgen.demo import _anchor_note

    out = SimpleNamespace(shown=[None, "a", None], anchors=[None, "a", "b"])
    titles = {"a": "Teal striped mug", "b": "Blue solid vase"}
    assert _anchor_note(out, 1, titles) == "beside: Teal striped mug (from their history)"
    assert _anchor_note(out, 2, titles) == "no card: the product leaves no corner free"
    assert _anchor_note(out, 0, titles) == "no history item shown"
