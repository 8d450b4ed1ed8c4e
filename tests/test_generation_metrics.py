"""Metrics for generated previews and blurbs, on fixtures whose right answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from recgen.evaluation.generation import (
    bleu, blurb_report, bootstrap_ci, distinct_n, faithfulness, feature_matching_ratio, frechet_distance,
    identifiability, personalization_gain, rouge, unique_sentence_ratio,
)


def _exact_gaussian_sample(n: int, mean: np.ndarray, var: np.ndarray, seed: int) -> np.ndarray:
    """n rows whose sample mean is exactly ``mean`` and sample covariance exactly ``diag(var)``."""
    z = np.random.default_rng(seed).normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # whiten: sample cov = I
    return z * np.sqrt(var) + mean


# ----------------------------------------------------------------------------- FID
def test_fid_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, -0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5, 4.0]), np.array([3.0, 0.5, 0.5, 1.0])
    a = _exact_gaussian_sample(500, mu1, s1, seed=1)
    b = _exact_gaussian_sample(300, mu2, s2, seed=2)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fid_one_dimensional_is_mean_gap_plus_std_gap_squared():
    a = _exact_gaussian_sample(50, np.array([2.0]), np.array([4.0]), seed=3)
    b = _exact_gaussian_sample(60, np.array([-1.0]), np.array([1.0]), seed=4)
    assert frechet_distance(a, b) == pytest.approx(3.0 ** 2 + (2.0 - 1.0) ** 2, rel=1e-9)


def test_fid_large_random_samples_approach_closed_form():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(20000, 3)) * np.sqrt([1.0, 2.0, 3.0])
    b = rng.normal(size=(20000, 3)) * np.sqrt([2.0, 2.0, 1.0]) + 1.0
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    expected = 3.0 + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


def test_fid_with_fewer_samples_than_dims_is_finite():
    # singular covariances (n < d), as with 64 previews in a 1280-d encoder space
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(10, 40)), rng.normal(size=(12, 40)) + 0.5
    d = frechet_distance(x, y)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("real, fake, match", [
    (np.zeros((1, 3)), np.zeros((5, 3)), "real_feats needs at least 2"),
    (np.zeros((5, 3)), np.zeros((1, 3)), "fake_feats needs at least 2"),
    (np.zeros((5, 3)), np.zeros((5, 4)), "fake_feats has dim 4"),
    (np.zeros(5), np.zeros((5, 1)), "real_feats must be 2-D"),
    (np.full((5, 2), np.nan), np.zeros((5, 2)), "real_feats contains NaN"),
])
def test_fid_validates_inputs(real, fake, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(real, fake)


# ----------------------------------------------------------------------------- identifiability
def test_identifiability_planted_nearest_is_perfect():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(300, 32))
    own = rng.integers(0, 300, size=200)
    gen = items[own] + 0.01 * rng.normal(size=(200, 32))
    res = identifiability(gen, items, own, n_candidates=100, ks=(1, 5))
    assert res["top1"] == 1.0 and res["top5"] == 1.0
    assert res["chance_top1"] == pytest.approx(0.01) and res["chance_top5"] == pytest.approx(0.05)
    assert res["n_candidates"] == 100 and res["n"] == 200


def test_identifiability_random_previews_are_near_chance():
    rng = np.random.default_rng(1)
    items = rng.normal(size=(500, 16))
    own = rng.integers(0, 500, size=2000)
    res = identifiability(rng.normal(size=(2000, 16)), items, own, n_candidates=20, ks=(1, 5))
    assert res["top1"] == pytest.approx(0.05, abs=0.02)
    assert res["top5"] == pytest.approx(0.25, abs=0.04)


def test_identifiability_constant_previews_score_chance_not_perfect():
    # all cosine similarities tie; ties must not count as hits
    items = np.random.default_rng(2).normal(size=(100, 8))
    res = identifiability(np.zeros((1000, 8)), items, np.arange(1000) % 100, n_candidates=10, ks=(1,))
    assert res["top1"] == pytest.approx(0.1, abs=0.04)


def test_identifiability_small_pool_uses_all_items_and_never_the_own_item_as_distractor():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    gen = np.array([[1.0, 0.05], [0.05, 1.0]])
    res = identifiability(gen, items, [0, 1], n_candidates=100, ks=(1, 2, 3))
    assert res["n_candidates"] == 3
    assert res["top1"] == 1.0 and res["chance_top1"] == pytest.approx(1 / 3)
    assert res["chance_top3"] == 1.0


def test_identifiability_is_seeded():
    rng = np.random.default_rng(3)
    items, gen = rng.normal(size=(200, 8)), rng.normal(size=(50, 8))
    own = rng.integers(0, 200, size=50)
    assert identifiability(gen, items, own, seed=7) == identifiability(gen, items, own, seed=7)


def test_identifiability_validates_inputs():
    items = np.zeros((10, 4))
    with pytest.raises(ValueError, match="own_rows must index item_feats"):
        identifiability(np.zeros((2, 4)), items, [0, 10])
    with pytest.raises(ValueError, match="own_rows must have shape"):
        identifiability(np.zeros((2, 4)), items, [0])
    with pytest.raises(ValueError, match="generated_feats has dim 3"):
        identifiability(np.zeros((2, 3)), items, [0, 1])
    with pytest.raises(ValueError, match="n_candidates"):
        identifiability(np.zeros((2, 4)), items, [0, 1], n_candidates=1)
    with pytest.raises(ValueError, match="ks"):
        identifiability(np.zeros((2, 4)), items, [0, 1], ks=(0,))


# ----------------------------------------------------------------------------- personalization
def _histories(rng, n, d, h=5):
    centers = rng.normal(size=(n, d))
    return centers, [c + 0.3 * rng.normal(size=(h, d)) for c in centers]


def test_personalization_planted_gain_has_ci_above_zero():
    rng = np.random.default_rng(0)
    centers, hist = _histories(rng, 80, 16)
    personal = centers + 0.5 * rng.normal(size=centers.shape)
    neutral = rng.normal(size=centers.shape)
    res = personalization_gain(personal, neutral, hist)
    assert res["mean_diff"] > 0.3
    assert 0 < res["ci_low"] <= res["mean_diff"] <= res["ci_high"]
    assert res["p_value"] < 1e-6
    assert res["sim_personal"] - res["sim_neutral"] == pytest.approx(res["mean_diff"])
    assert res["n"] == 80


def test_personalization_without_gain_has_ci_covering_zero():
    rng = np.random.default_rng(1)
    _, hist = _histories(rng, 80, 16)
    a, b = rng.normal(size=(80, 16)), rng.normal(size=(80, 16))
    res = personalization_gain(a, b, hist)
    assert res["ci_low"] < 0 < res["ci_high"]
    assert res["p_value"] > 0.05
    same = personalization_gain(a, a, hist)
    assert same["mean_diff"] == 0 and same["ci_low"] == same["ci_high"] == 0 and same["p_value"] == 1.0


def test_personalization_validates_inputs():
    hist = [np.ones((2, 3))] * 2
    with pytest.raises(ValueError, match="neutral_feats has shape"):
        personalization_gain(np.ones((2, 3)), np.ones((3, 3)), hist)
    with pytest.raises(ValueError, match="history_feats has 1 entries"):
        personalization_gain(np.ones((2, 3)), np.ones((2, 3)), hist[:1])
    with pytest.raises(ValueError, match=r"history_feats\[1\] needs at least 1"):
        personalization_gain(np.ones((2, 3)), np.ones((2, 3)), [np.ones((2, 3)), np.ones((0, 3))])
    with pytest.raises(ValueError, match=r"history_feats\[0\] has dim 2"):
        personalization_gain(np.ones((2, 3)), np.ones((2, 3)), [np.ones((2, 2)), np.ones((2, 3))])


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_constant_and_normal_width():
    assert bootstrap_ci([2.0] * 10) == (2.0, 2.0)
    x = np.random.default_rng(0).normal(size=400)
    low, high = bootstrap_ci(x, n_boot=2000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert low < x.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(x, n_boot=500, seed=3) == bootstrap_ci(x, n_boot=500, seed=3)


def test_bootstrap_ci_other_statistic_and_chunking(monkeypatch):
    import recgen.evaluation.generation as gm

    x = np.arange(101.0)
    monkeypatch.setattr(gm, "_BOOT_CHUNK_VALUES", 1000)  # ~10 resamples per chunk
    low, high = bootstrap_ci(x, n_boot=300, statistic=np.median)
    assert low < 50 < high and 30 < low and high < 70


def test_bootstrap_ci_validates_inputs():
    with pytest.raises(ValueError, match="values must be a non-empty 1-D"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="ci must be in"):
        bootstrap_ci([1.0, 2.0], ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0, 2.0], n_boot=0)


# ----------------------------------------------------------------------------- BLEU / ROUGE
def test_bleu_identical_is_100():
    hyps = ["the dress fits well and the fabric is soft", "great colour, runs small"]
    assert bleu(hyps, [[h] for h in hyps], n=4) == pytest.approx(100.0)
    assert bleu(hyps, [[h] for h in hyps], n=1) == pytest.approx(100.0)


def test_bleu_hand_computed():
    # unigrams: the x2, cat, on, mat match (5/6); bigrams: "the cat", "on the", "the mat" (3/5); equal lengths
    hyp, ref = ["the cat sat on the mat"], [["The cat is on the mat"]]
    assert bleu(hyp, ref, n=1) == pytest.approx(100 * 5 / 6)
    assert bleu(hyp, ref, n=2) == pytest.approx(100 * np.sqrt(5 / 6 * 3 / 5))
    assert bleu(hyp, ref, n=2, lowercase=False) < bleu(hyp, ref, n=2)


def test_bleu_variable_references_match_sacrebleu_with_repeated_padding():
    import sacrebleu

    hyps = ["a nice soft sweater", "too short for me", "love the pockets on this coat"]
    refs = [["soft and nice sweater", "a very nice sweater", "nice"],
            ["it was too short"],
            ["the pockets are great", "love this coat"]]
    # padding with a hypothesis' first reference leaves clipped counts and closest lengths unchanged
    streams = [[r[j] if j < len(r) else r[0] for r in refs] for j in range(3)]
    for n in (1, 2, 4):
        direct = sacrebleu.metrics.BLEU(max_ngram_order=n, smooth_method="none", lowercase=True)
        assert bleu(hyps, refs, n=n) == pytest.approx(direct.corpus_score(hyps, streams).score)
    # more references can only help
    assert bleu(hyps, refs, n=1) >= bleu(hyps, [r[:1] for r in refs], n=1)


def test_rouge_identical_is_100_and_hand_computed():
    hyps = ["the dress fits well", "runs small"]
    res = rouge(hyps, [[h] for h in hyps])
    assert all(v == pytest.approx(100.0) for v in res.values())
    assert set(res) == {f"{m}_{s}" for m in ("rouge1", "rouge2", "rougeL") for s in ("p", "r", "f")}
    # "the cat sat" vs "the cat": rouge1 P = 2/3, R = 1, F = 0.8; rouge2 P = 1/2, R = 1, F = 2/3
    r = rouge(["the cat sat"], [["the cat"]])
    assert r["rouge1_p"] == pytest.approx(200 / 3) and r["rouge1_r"] == pytest.approx(100.0)
    assert r["rouge1_f"] == pytest.approx(80.0) and r["rouge2_f"] == pytest.approx(200 / 3)


def test_rouge_multi_reference_takes_best_f_and_matches_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    hyps = ["lovely fabric and fits true to size", "the colour faded quickly"]
    refs = [["fabric is lovely", "fits true to size, lovely fabric"], ["colour faded after washing"]]
    res = rouge(hyps, refs)
    for m in ("rouge1", "rouge2", "rougeL"):
        best = [max((scorer.score(r, h)[m] for r in rs), key=lambda s: s.fmeasure) for h, rs in zip(hyps, refs)]
        assert res[f"{m}_f"] == pytest.approx(100 * np.mean([s.fmeasure for s in best]))
        assert res[f"{m}_p"] == pytest.approx(100 * np.mean([s.precision for s in best]))
        assert res[f"{m}_r"] == pytest.approx(100 * np.mean([s.recall for s in best]))
    each = rouge(hyps, refs, per_text=True)
    for m in ("rouge1", "rouge2", "rougeL"):
        best = [max(scorer.score(r, h)[m].fmeasure for r in rs) for h, rs in zip(hyps, refs)]
        assert each[f"{m}_f_per_text"] == pytest.approx(100 * np.array(best))
        assert each[f"{m}_f"] == pytest.approx(each[f"{m}_f_per_text"].mean())


@pytest.mark.parametrize("fn", [bleu, rouge])
def test_reference_metrics_validate_inputs(fn):
    kw = {"n": 4} if fn is bleu else {}
    with pytest.raises(ValueError, match="references has 1 entries but hypotheses has 2"):
        fn(["a", "b"], [["a"]], **kw)
    with pytest.raises(ValueError, match=r"references\[0\] is empty"):
        fn(["a"], [[]], **kw)
    with pytest.raises(TypeError, match=r"references\[0\] must be a list"):
        fn(["a"], ["a"], **kw)
    with pytest.raises(ValueError, match="hypotheses is empty"):
        fn([], [], **kw)


# ----------------------------------------------------------------------------- USR / DIV / FMR
def test_unique_sentence_ratio():
    assert unique_sentence_ratio(["Nice dress.", "nice  dress .", "Runs small"]) == pytest.approx(2 / 3)
    assert unique_sentence_ratio(["a", "b", "c", "d"]) == 1.0
    assert unique_sentence_ratio(["same"] * 4) == 0.25


def test_distinct_n():
    texts = ["a b a", "b c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)   # a b a b c
    assert distinct_n(texts, 2) == 1.0                    # (a b) (b a) (b c): not across texts
    assert distinct_n(["Hi, hi!"], 1) == pytest.approx(3 / 4)  # hi , hi !
    assert distinct_n(["one"], 2) == 0.0
    with pytest.raises(ValueError, match="n must be a positive integer"):
        distinct_n(texts, 0)


def test_feature_matching_ratio():
    texts = ["Great FIT here", "fitted nicely", "the fit is odd", "a T-shirt for summer"]
    assert feature_matching_ratio(texts, ["fit", "fit", "sleeve", "t-shirt"]) == pytest.approx(2 / 4)
    assert feature_matching_ratio(["nice  wide leg"], ["wide leg"]) == 1.0
    with pytest.raises(ValueError, match="features has 1 entries but texts has 2"):
        feature_matching_ratio(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"features\[0\] must be a non-empty str"):
        feature_matching_ratio(["a"], [""])


# ----------------------------------------------------------------------------- faithfulness
def test_faithfulness_hand_made():
    res = faithfulness(["red mug", "blue mug", "The mugs are red!", "it is"],
                       ["A red mug.", "A red mug.", "A red mug.", "anything"])
    assert res["per_text"] == [1.0, 0.5, 1.0, 1.0]  # stop words only -> nothing asserted
    assert res["unsupported"] == [[], ["blue"], [], []]
    assert res["mean"] == pytest.approx(3.5 / 4)
    assert res["all_supported"] == pytest.approx(3 / 4)
    # plural in the source, singular in the blurb; repeated invented words listed once, counted twice
    res = faithfulness(["cotton shirt, silk silk"], ["Shirts made of cotton"])
    assert res["per_text"] == [0.5] and res["unsupported"] == [["silk"]]


def test_faithfulness_validates_inputs():
    with pytest.raises(ValueError, match="source_texts has 1 entries but texts has 2"):
        faithfulness(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="texts must be a sequence of strings"):
        faithfulness("red mug", ["a"])


# ----------------------------------------------------------------------------- report
def test_blurb_report_combines_metrics():
    hyps = ["red mug for tea", "blue mug"]
    refs = [["a red mug for tea"], ["a big red mug"]]
    rep = blurb_report(hyps, refs)
    assert rep["bleu1"] == pytest.approx(bleu(hyps, refs, n=1))
    assert rep["bleu4"] == pytest.approx(bleu(hyps, refs, n=4))
    assert rep["rougeL_f"] == pytest.approx(rouge(hyps, refs)["rougeL_f"])
    assert rep["usr"] == 1.0 and rep["distinct2"] == distinct_n(hyps, 2) and rep["n"] == 2
    assert "fmr" not in rep and "faithfulness" not in rep
    full = blurb_report(hyps, refs, features=["tea", "tea"], sources=["A red mug for tea.", "A red mug."])
    assert full["fmr"] == 0.5
    assert full["faithfulness"] == pytest.approx(0.75) and full["faithful_all"] == 0.5
    assert full["unsupported"] == [[], ["blue"]]
    bare = blurb_report(hyps, None, sources=["A red mug for tea.", "A red mug."])  # nothing held out
    assert not {"bleu1", "bleu4", "rouge1_f", "rouge2_f", "rougeL_f"} & set(bare)
    assert {k: bare[k] for k in ("usr", "distinct1", "distinct2", "n", "faithfulness")} == \
        {k: full[k] for k in ("usr", "distinct1", "distinct2", "n", "faithfulness")}


def test_frechet_distance_with_fewer_rows_than_dimensions_is_quiet():
    """Few previews, or features that never vary, make the covariances singular: that is expected
    and handled (eps), but the demo printed scipy's LinAlgWarning for each judge table row."""
    import warnings

    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 64)) * np.r_[np.ones(10), np.zeros(54)]  # features that never vary: rank 10
    b = rng.normal(size=(30, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0
