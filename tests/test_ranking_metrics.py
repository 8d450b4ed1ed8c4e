"""Ranking metrics on hand-computed fixtures, against scikit-learn, and the splits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from recgen.evaluation import (
    average_precision_at_k, evaluate_rankings, global_time_split, hit_rate_at_k, intra_list_diversity, mrr_at_k,
    ndcg_at_k, novelty, paired_comparison, per_user_metrics, random_split, recall_at_k,
)

RANKED = ["a", "b", "c", "d", "e"]
REL = {"b", "d", "z"}


def test_hand_computed_values():
    assert recall_at_k(RANKED, REL, 4) == pytest.approx(2 / 3)
    assert hit_rate_at_k(RANKED, REL, 1) == 0.0 and hit_rate_at_k(RANKED, REL, 2) == 1.0
    assert mrr_at_k(RANKED, REL, 5) == pytest.approx(1 / 2)
    assert mrr_at_k(RANKED, {"q"}, 5) == 0.0
    # AP@4: hits at ranks 2 and 4 -> (1/2 + 2/4) / min(4, 3)
    assert average_precision_at_k(RANKED, REL, 4) == pytest.approx((0.5 + 0.5) / 3)
    # NDCG@4: (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3) + 1/log2(4))
    assert ndcg_at_k(RANKED, REL, 4) == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3) + 0.5))
    for f in (recall_at_k, average_precision_at_k, ndcg_at_k):
        assert f(RANKED, set(), 3) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_agrees_with_scikit_learn(seed):
    """Binary relevance, no ties, every relevant item in the scored list: recgen == sklearn's ndcg_score."""
    rng = np.random.default_rng(seed)
    n, k = 30, 10
    items = np.array([f"i{j}" for j in range(n)])
    scores = rng.permutation(n).astype(float)
    rel = rng.random(n) < 0.2
    rel[rng.integers(n)] = True
    ranked = items[np.argsort(-scores)].tolist()
    ours = ndcg_at_k(ranked, set(items[rel]), k)
    theirs = ndcg_score(rel[None].astype(float), scores[None], k=k)
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_diversity_and_novelty():
    vec = {"a": np.array([1.0, 0]), "b": np.array([0.0, 1]), "c": np.array([1.0, 0])}
    # pairs: a-b distance 1, a-c 0, b-c 1 -> mean 2/3
    assert intra_list_diversity(["a", "b", "c"], vec, 3) == pytest.approx(2 / 3)
    assert np.isnan(intra_list_diversity(["a", "x"], vec, 2))
    pop = {"a": 50, "b": 1}
    assert novelty(["a", "b", "new"], pop, 100, 3) == pytest.approx(np.mean([1.0, np.log2(100), np.log2(100)]))


def test_per_user_and_evaluate_rankings():
    test = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": ["b", "d", "a", "q"]})
    train = pd.DataFrame({"user_id": [1, 2, 2, 4], "item_id": ["a", "b", "c", "a"]})
    rankings = {"1": RANKED, "2": ["a", "e"]}                 # user 3 has no ranking: scores 0
    per = per_user_metrics(rankings, test, k=3, item_vectors={i: np.eye(5)[n] for n, i in enumerate(RANKED)},
                           train=train)
    assert list(per.index) == ["1", "2", "3"]
    assert per.loc["1", "recall@3"] == 0.5 and per.loc["2", "mrr@3"] == 1.0 and per.loc["3", "hit@3"] == 0.0
    assert per.loc["1", "diversity@3"] == pytest.approx(1.0) and np.isnan(per.loc["3", "diversity@3"])
    out = evaluate_rankings(rankings, test, k=3, n_items=10)
    assert out["users"] == 3 and out["hit@3"] == pytest.approx(2 / 3) and out["coverage"] == pytest.approx(4 / 10)


def test_paired_comparison():
    rng = np.random.default_rng(0)
    b = rng.random(300)
    better = paired_comparison(b + 0.05 + rng.normal(0, 0.01, 300), b)
    assert better["delta"] == pytest.approx(0.05, abs=0.005) and better["ci_low"] > 0
    assert better["p_wilcoxon"] < 1e-10 and better["p_bootstrap"] < 0.01
    same = paired_comparison(b, b)
    assert same["delta"] == 0 and same["p_wilcoxon"] == 1.0
    with pytest.raises(ValueError, match="paired"):
        paired_comparison([1.0, 2.0], [1.0])


def test_splits():
    df = pd.DataFrame({"user_id": list("abcdefghij"), "item_id": list("0123456789"),
                       "timestamp": [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]})
    train, test = global_time_split(df, test_fraction=0.2)
    assert sorted(test["timestamp"]) == [9, 10] and train["timestamp"].max() < test["timestamp"].min()
    train, val, test = global_time_split(df, test_fraction=0.2, val_fraction=0.2)
    assert sorted(val["timestamp"]) == [7, 8] and len(train) == 6
    with pytest.raises(ValueError, match="test_fraction"):
        global_time_split(df, test_fraction=0.6, val_fraction=0.5)
    with pytest.raises(ValueError, match="random_split"):
        global_time_split(df.drop(columns="timestamp"))
    tr, te = random_split(df, test_fraction=0.3, seed=1)
    assert len(tr) + len(te) == 10 and set(tr["item_id"]).isdisjoint(te["item_id"])
    assert random_split(df, test_fraction=0.3, seed=1)[1].equals(te)


def test_compare_rankings_table_and_slices():
    from recgen.evaluation.compare import compare_rankings

    train = pd.DataFrame({"user_id": ["u1"] * 6 + ["u2"] * 2 + ["u3"] * 6,
                          "item_id": ["a", "b", "c", "d", "e", "f", "a", "b", "a", "b", "c", "d", "e", "f"]})
    test = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u3"], "item_id": ["g", "h", "g", "c"]})
    good = {"u1": ["g", "x"], "u2": ["h", "y"], "u3": ["g", "c"]}
    bad = {"u1": ["x", "y"], "u2": ["y", "x"], "u3": ["x", "c"]}
    t = compare_rankings({"bad": bad, "good": good}, test, train=train, k=2, n_items=10, seed=0)
    assert set(t["slice"]) == {"all", "cold-start items", "short history (<= 5)"}
    allrow = t[(t["slice"] == "all") & (t["variant"] == "good")].iloc[0]
    assert allrow["users"] == 3 and allrow["recall@2"] == 1.0 and allrow["Δrecall@2"] == pytest.approx(5 / 6)
    assert allrow["recall@2 ci"][0] <= 1.0 <= allrow["recall@2 ci"][1] + 1e-12
    cold = t[(t["slice"] == "cold-start items") & (t["variant"] == "bad")].iloc[0]
    assert cold["recall@2"] == 0.0   # "bad" never recommends the new items g and h
    short = t[t["slice"] == "short history (<= 5)"]
    assert set(short["users"]) == {1}                         # only u2 has <= 5 train interactions
    assert t.loc[t["variant"] == "good", "coverage@2"].iloc[0] == pytest.approx(5 / 10)
    with pytest.raises(ValueError, match="baseline"):
        compare_rankings({"a": good}, test, train=train, baseline="zzz")


def test_review_findings_edge_cases():
    # duplicates in a list count once
    assert ndcg_at_k(["a", "a"], {"a", "b"}, 2) < 1.0
    assert average_precision_at_k(["a", "a"], {"a", "b"}, 2) == pytest.approx(0.5)
    # integer user ids in rankings match the test frame's ids
    test = pd.DataFrame({"user_id": [1], "item_id": ["a"]})
    assert evaluate_rankings({1: ["a"]}, test, k=1)["recall@1"] == 1.0
    # text timestamps are parsed, not sorted as NaN; unparsable ones raise
    df = pd.DataFrame({"user_id": list("abcd"), "item_id": list("wxyz"),
                       "timestamp": ["2020-01-04", "2020-01-01", "2020-01-03", "2020-01-02"]})
    _, te = global_time_split(df, test_fraction=0.25)
    assert te["item_id"].tolist() == ["w"]
    with pytest.raises(ValueError, match="unparsable"):
        global_time_split(df.assign(timestamp=["2020-01-01", "soon", "2020-01-02", "2020-01-03"]), test_fraction=0.25)
    # an empty part raises; one timestamp is never split across parts
    with pytest.raises(ValueError, match="empty part"):
        global_time_split(df.assign(timestamp=[1, 2, 3, 4]), test_fraction=0.1)
    tied = pd.DataFrame({"user_id": list("abcdef"), "item_id": list("uvwxyz"), "timestamp": [1, 2, 3, 3, 3, 4]})
    tr, te = global_time_split(tied, test_fraction=0.34)
    assert tr["timestamp"].max() < te["timestamp"].min()


def test_harness_split_and_options(tmp_path):
    from recgen.evaluation.harness import _reviews_known_by, _split, load_config

    inter = pd.DataFrame({"user_id": list("abcdefghij"), "item_id": list("0123456789"), "timestamp": range(10)})
    train, val, test = _split(inter, {"kind": "global_time", "test_fraction": 0.2, "val_fraction": 0.0}, 0)
    assert len(test) == 2 and len(val) >= 1 and train["timestamp"].max() < val["timestamp"].min()
    p = tmp_path / "c.toml"
    p.write_text('[[variants]]\nname = "ALS"\nkind = "als"\nfactor = 32\n')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['factor'\]"):
        load_config(p)
    reviews = pd.DataFrame({"item_id": ["0", "9"], "user_id": ["a", "j"], "timestamp": [0, 9], "text": ["x", "y"],
                            "rating": [5.0, 1.0]})
    assert _reviews_known_by(reviews, train)["item_id"].tolist() == ["0"]   # the later review is not seen
