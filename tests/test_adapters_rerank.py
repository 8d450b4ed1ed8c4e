"""Re-rankers: candidate formats (implicit, generic frame) and the learned combiner."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recgen.errors import NotFittedError
from recgen.evaluation.ranking import leave_last_n_split, ndcg_at_k
from recgen import Enricher
from recgen.interop import candidates_from_frame, candidates_from_implicit
from recgen_adapters.rerank import LearnedReranker


def test_candidates_from_implicit_shapes_padding_and_ids():
    ids = np.array([[2, 0, -1], [1, 2, 0]])
    scores = np.array([[0.9, 0.5, -np.inf], [0.8, 0.7, np.nan]])
    out = candidates_from_implicit(["u1", 7], ids, scores, item_ids=["a", "b", "c"])
    assert out.to_dict("list") == {"user_id": ["u1", "u1", "7", "7"], "item_id": ["c", "a", "b", "c"],
                                   "score": [0.9, 0.5, 0.8, 0.7], "cf_rank": [1, 2, 1, 2]}
    one = candidates_from_implicit(["u"], np.array([1, 0]), np.array([2.0, 1.0]), item_ids=["a", "b"])
    assert one["item_id"].tolist() == ["b", "a"]
    with pytest.raises(ValueError, match="one user id per row"):
        candidates_from_implicit(["u"], ids, scores, item_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="item_ids has only 2"):
        candidates_from_implicit(["u1", "u2"], ids, scores, item_ids=["a", "b"])
    with pytest.raises(TypeError, match="integer item row numbers"):
        candidates_from_implicit(["u1", "u2"], ids.astype(float), scores, item_ids=["a", "b", "c"])


def test_candidates_from_implicit_real_als(sample):
    implicit = pytest.importorskip("implicit")
    import scipy.sparse as sp

    inter = sample.interactions
    users, u_rows = np.unique(inter["user_id"].astype(str), return_inverse=True)
    items, i_rows = np.unique(inter["item_id"].astype(str), return_inverse=True)
    ui = sp.csr_matrix((np.ones(len(inter), dtype=np.float32), (u_rows, i_rows)), shape=(len(users), len(items)))
    als = implicit.cpu.als.AlternatingLeastSquares(factors=8, iterations=3, random_state=0)
    als.fit(ui, show_progress=False)
    rows = np.arange(5)
    ids, scores = als.recommend(rows, ui[rows], N=10, filter_already_liked_items=True)
    out = candidates_from_implicit(users[rows], ids, scores, item_ids=items)
    assert len(out) == 50 and out.groupby("user_id")["cf_rank"].max().eq(10).all()
    seen = set(zip(inter["user_id"].astype(str), inter["item_id"].astype(str)))
    assert not any((u, i) in seen for u, i in zip(out["user_id"], out["item_id"]))
    assert (out.groupby("user_id", sort=False)["score"].diff().dropna() <= 0).all()


def test_candidates_from_frame_cleans():
    df = pd.DataFrame({"cust": ["a", "a", "a", None, "b", "b"], "sku": [1, 2, 1, 3, 2, 3],
                       "s": [0.1, 0.5, 0.9, 1.0, "bad", 0.2], "pop": [1, 2, 3, 4, 5, 6]})
    out = candidates_from_frame(df, user_col="cust", item_col="sku", score_col="s")
    assert out[["cust", "sku", "s", "cf_rank"]].values.tolist() == [["a", "1", 0.9, 1], ["a", "2", 0.5, 2],
                                                                  ["b", "3", 0.2, 1]]
    assert "pop" in out.columns
    assert len(candidates_from_frame(df, user_col="cust", item_col="sku", score_col="s", k=1)) == 2
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        candidates_from_frame(df, user_col="cust", item_col="sku")
    with pytest.raises(ValueError, match="k must be"):
        candidates_from_frame(df, user_col="cust", item_col="sku", score_col="s", k=0)


@pytest.fixture(scope="module")
def split(sample_store):
    """recgen fitted on each user's early history; the last 3 interactions are the future."""
    from recgen import CatalogData, EmbeddingCache, Recgen

    cat = sample_store.catalog()
    train, future = leave_last_n_split(cat.interactions, n=3)
    model = Recgen().fit(CatalogData(items=cat.items, reviews=cat.reviews, interactions=train, name="train"),
                         cache=EmbeddingCache(sample_store.engine))
    return Enricher(model), train, future, cat.items["item_id"].astype(str).to_numpy()


def _candidates(train, future, items, seed):
    """Per future user: the future items + 27 random unseen items, scored by an uninformative 'CF'."""
    rng = np.random.default_rng(seed)
    seen = train.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    rows = []
    for user, got in future.groupby("user_id")["item_id"]:
        got = set(map(str, got))
        pool = [i for i in items if i not in seen.get(user, set()) and i not in got]
        for i in list(got) + list(rng.choice(pool, 27, replace=False)):
            rows.append((str(user), i, rng.normal()))
    return candidates_from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "score"]))


def _mean_ndcg(ranked: pd.DataFrame, future: pd.DataFrame, col: str) -> float:
    truth = future.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    return float(np.mean([ndcg_at_k(g.sort_values(col)["item_id"].tolist(), truth[u], 10)
                          for u, g in ranked.groupby("user_id")]))


@pytest.mark.parametrize("model", ["hgb", "logistic", "lambdarank"])
def test_learned_reranker_uses_recgen_signal(split, model):
    if model == "lambdarank":
        pytest.importorskip("lightgbm")
    enricher, train, future, items = split
    cands = _candidates(train, future, items, seed=1)
    users = cands["user_id"].unique()
    fit_users, test_users = set(users[::2]), set(users[1::2])
    rr = LearnedReranker(enricher, model=model).fit(cands[cands["user_id"].isin(fit_users)], future)
    assert rr.fit_info_["positives"] > 0 and "recgen_sim_fused" in rr.feature_names_
    held = cands[cands["user_id"].isin(test_users)]
    out = rr.rerank(held)
    assert len(out) == len(held) and set(out.columns) >= {"rerank_score", "rerank_rank"}
    assert (out.groupby("user_id", sort=False)["rerank_score"].diff().dropna() <= 0).all()
    cf = _mean_ndcg(held, future, "cf_rank")
    re = _mean_ndcg(out, future, "rerank_rank")
    # the 'CF' score is noise, so any gain comes from recgen's features: chance NDCG@10 is ~0.3 here
    assert re > cf + 0.15, (model, cf, re)
    top = rr.rerank(held, k=5)
    assert top.groupby("user_id").size().max() == 5


def test_learned_reranker_importance_and_errors(split):
    enricher, train, future, items = split
    cands = _candidates(train, future, items, seed=2)
    with pytest.raises(NotFittedError, match="call fit"):
        LearnedReranker(enricher).predict(cands)
    with pytest.raises(ValueError, match="model must be one of"):
        LearnedReranker(enricher, model="xgboost")
    rr = LearnedReranker(enricher)
    with pytest.raises(ValueError, match="none of the .* candidate pairs"):
        rr.fit(cands, future.assign(item_id="nope"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['popularity'\]"):
        LearnedReranker(enricher, extra_features=["popularity"]).fit(cands, future)
    with pytest.raises(ValueError, match="non-finite"):
        rr.fit(cands.assign(score=np.nan), future)
    rr.fit(cands, future)
    imp = rr.feature_importance(_candidates(train, future, items, seed=3), future)
    assert imp.index[0].startswith("recgen_sim_")  # the signal is in recgen's similarities
    assert abs(imp["score"]) < imp.iloc[0]


def test_generic_frame_example_on_own_files(saved_workdir, candidates, tmp_path, monkeypatch, capsys):
    """The example script's own-data path: files in, re-ranked file out (atomically)."""
    import importlib
    import sys

    from tests.conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "adapters" / "examples"))
    sys.modules.pop("rerank_generic_frame", None)
    example = importlib.import_module("rerank_generic_frame")
    own = candidates.rename(columns={"user_id": "customer", "item_id": "sku", "cf_score": "s"})
    own.iloc[:200].to_parquet(tmp_path / "past.parquet")
    own.iloc[200:].to_csv(tmp_path / "today.csv", index=False)
    own.iloc[:200:4][["customer", "sku"]].to_csv(tmp_path / "clicks.csv", index=False)
    out = tmp_path / "out" / "reranked.parquet"
    example.main(["--recgen", str(saved_workdir), "--train-candidates", str(tmp_path / "past.parquet"),
                  "--positives", str(tmp_path / "clicks.csv"), "--candidates", str(tmp_path / "today.csv"),
                  "--output", str(out), "--user-col", "customer", "--item-col", "sku", "--score-col", "s", "--k", "3"])
    got = pd.read_parquet(out)
    assert got.groupby("customer").size().max() <= 3 and {"rerank_score", "rerank_rank"} <= set(got.columns)
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["reranked.parquet"]  # no temp file left behind


def test_blend_reranker_picks_the_weight(split):
    from recgen_adapters.rerank import BlendReranker

    enricher, train, future, items = split
    noise = _candidates(train, future, items, seed=4)
    blend = BlendReranker(enricher).fit(noise, future)
    assert blend.weight_ > 0 and blend.scores_[blend.weight_] > blend.scores_[0.0] + 0.1
    out = blend.rerank(noise, k=10)
    assert _mean_ndcg(out, future, "rerank_rank") > _mean_ndcg(noise, future, "cf_rank") + 0.1
    # a CF score that already knows the answer: the blend keeps it (weight 0)
    truth = set(zip(future["user_id"].astype(str), future["item_id"].astype(str)))
    oracle = noise.assign(score=[float((u, i) in truth) + 0.01 * s for u, i, s in
                                 zip(noise["user_id"], noise["item_id"], noise["score"])])
    assert BlendReranker(enricher).fit(oracle, future).weight_ == 0.0
    with pytest.raises(ValueError, match="modality"):
        BlendReranker(enricher, modality="audio")
    with pytest.raises(NotFittedError):
        BlendReranker(enricher).predict(noise)


def test_float_ids_match_the_enrichment(split):
    """Ids read as floats (a CSV column with gaps) are normalised like the enrichment does: 1.0 -> "1"."""
    enricher = split[0]
    u = enricher.model.profiles.user_ids_[0]
    frame = pd.DataFrame({"user_id": [u, u], "item_id": ["SKU-0001", "SKU-0002"], "score": [1.0, 2.0]})
    assert candidates_from_frame(frame)["item_id"].tolist() == ["SKU-0002", "SKU-0001"]
    num = pd.DataFrame({"u": [1.0, 1.0, 2.0], "i": [10.0, 11.0, 10.0], "s": [0.5, 0.7, 0.1], "_u": [7, 8, 9]})
    out = candidates_from_frame(num, user_col="u", item_col="i", score_col="s")
    assert out[["u", "i", "cf_rank"]].values.tolist() == [["1", "11", 1], ["1", "10", 2], ["2", "10", 1]]
    assert out["_u"].tolist() == [8, 7, 9]  # a user column called _u is data, not scratch space
