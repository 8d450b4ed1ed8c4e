"""`recgen evaluate CONFIG`: config validation, and a run on the sample catalog writing HTML/JSON/CSV."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import copy_warm_store

from recgen.evaluation.harness import load_config, run_evaluation

GOOD = """
[data]
dataset = "sample"
[split]
kind = "global_time"
test_fraction = 0.15
val_fraction = 0.15
[evaluation]
k = 10
n_boot = 200
baseline = "popularity"
examples = 2
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


@pytest.mark.parametrize("text,match", [
    ("[data]\ndataset='sample'\n", "at least one"),
    (GOOD.replace('kind = "random"', 'kind = "lightgcn"'), "kind 'lightgcn'"),
    (GOOD.replace("n_boot = 200", "n_boot = 200\nbootstraps = 3"), r"unknown key\(s\) \['bootstraps'\]"),
    (GOOD.replace('baseline = "popularity"', 'baseline = "ALS"'), "baseline 'ALS'"),
    (GOOD.replace('name = "random"', 'name = "popularity"'), "two variants"),
    (GOOD + "\n[extra]\nx=1\n", "unknown section"),
    (GOOD.replace('kind = "global_time"', 'kind = "future"'), "split"),
    ("variants = [", "not valid TOML"),
])
def test_config_errors_name_the_problem(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.toml")


def test_run_on_sample_writes_report(tmp_path, _warm_store):
    copy_warm_store(_warm_store, tmp_path)  # the run's store doubles as the embedding cache
    p = tmp_path / "c.toml"
    p.write_text(GOOD.replace('dataset = "sample"', 'dataset = "sample"\nstore = "recgen.db"'))
    res = run_evaluation(load_config(p), tmp_path / "out", echo=lambda s: None)
    allrows = res.table[res.table["slice"] == "all"].set_index("variant")
    assert list(allrows.index) == ["popularity", "random", "recgen content"]
    # on the sample shop tastes are content-driven: recgen beats popularity with a significant paired delta
    assert allrows.loc["recgen content", "Δndcg@10"] > 0 and allrows.loc["recgen content", "p ndcg@10"] < 0.05
    lo, hi = allrows.loc["recgen content", "ndcg@10 ci"]
    assert lo <= allrows.loc["recgen content", "ndcg@10"] <= hi
    csv = pd.read_csv(res.csv)
    assert {"ndcg@10 ci_low", "ndcg@10 ci_high", "Δndcg@10", "coverage@10", "diversity@10"} <= set(csv.columns)
    data = json.loads(res.json.read_text())
    assert data["config"]["evaluation"]["k"] == 10 and "numpy" in data["versions"] and len(data["rows"]) == len(csv)
    html = res.html.read_text()
    assert "recgen content" in html and "<svg" in html and html.count('class="card') > 10
    assert 'class="pv"' not in html  # no generated previews unless asked for


@pytest.mark.slow  # a second full evaluation plus generator training (~40 s); `make test-slow` runs it
def test_rerun_is_reproducible_and_generates_previews(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(GOOD)
    res = run_evaluation(load_config(p), tmp_path / "out", echo=lambda s: None)
    # reproducible from the seed; the second run also trains tiny generators for the example cards
    p.write_text(GOOD.replace("examples = 2", "examples = 1\ngenerate = true\ngenerator_epochs = 1"))
    again = run_evaluation(load_config(p), tmp_path / "out2", echo=lambda s: None)
    pd.testing.assert_frame_equal(res.table, again.table)
    html2 = again.html.read_text()
    assert 'class="pv"' in html2 and 'class="blurb"' in html2


CF = """
[data]
dataset = "sample"
store = "store.db"
[split]
kind = "global_time"
test_fraction = 0.15
val_fraction = 0.15
[evaluation]
k = 10
seed = 0
n_boot = 200
examples = 0
baseline = "ALS"
[[variants]]
name = "ALS"
kind = "als"
factors = 16
iterations = 5
[[variants]]
name = "BPR"
kind = "bpr"
factors = 16
iterations = 20
[[variants]]
name = "ALS + recgen"
kind = "als+recgen"
factors = 16
iterations = 5
candidates = 30
"""


def test_cf_variants_and_the_plugin_variant_run(tmp_path, _warm_store):
    """The core's ALS/BPR kinds and the `als+recgen` kind that recgen_adapters registers through
    recgen.plugins (regression: issue 12 moved both out of the harness's if/elif chain)."""
    pytest.importorskip("implicit")
    import shutil

    shutil.copy2(_warm_store / "recgen.db", tmp_path / "store.db")  # a warm embedding cache
    (tmp_path / "c.toml").write_text(CF)
    said: list[str] = []
    res = run_evaluation(load_config(tmp_path / "c.toml"), tmp_path / "out", echo=said.append)
    allrows = res.table[res.table["slice"] == "all"].set_index("variant")
    assert list(allrows.index) == ["ALS", "BPR", "ALS + recgen"]
    assert (allrows["users"] > 20).all() and allrows["recall@10"].between(0, 1).all()
    assert any("blend weight" in s and "picked on val" in s for s in said), said
