"""Tests for ``recgen.index.ItemIndex``: search contract, mutation, validation, persistence, GPU, threads.

Data are small and structured so the right answer is known: one-hot vectors with planted
nearest neighbours, points on a line for L2, and Gaussian clusters for IVF recall.
"""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

faiss = pytest.importorskip("faiss", reason="faiss-cpu (recgen[cpu]) is needed for the index tests")

from recgen.errors import ArtifactError, MissingExtraError, NotFittedError, RecgenError, UnknownIdError  # noqa: E402
from recgen.index import ItemIndex, auto_factory  # noqa: E402


def _num_gpus() -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


# ----------------------------------------------------------------------------- data
DIM = 8
ONE_HOT_IDS = [f"item{i}" for i in range(DIM)]


def one_hot_index(**kwargs) -> ItemIndex:
    """``item{i}`` is the unit vector e_i; the CPU is forced so results are deterministic."""
    kwargs.setdefault("use_gpu", False)
    return ItemIndex.build(ONE_HOT_IDS, np.eye(DIM, dtype=np.float32), **kwargs)


def planted_query() -> np.ndarray:
    """Closest to item0, then item1, then item2; orthogonal to every other item."""
    q = np.zeros(DIM, dtype=np.float32)
    q[:3] = [1.0, 0.5, 0.25]
    return q


def clustered(n: int, dim: int = 32, n_clusters: int = 40, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    labels = rng.integers(n_clusters, size=n)
    x = centers[labels] + 0.15 * rng.normal(size=(n, dim)).astype(np.float32)
    return [f"p{i}" for i in range(n)], x.astype(np.float32)


@pytest.fixture(scope="module")
def ivf_data():
    return clustered(1500, seed=1)


def ivf_index(ids, x, **kwargs) -> ItemIndex:
    kwargs.setdefault("use_gpu", False)
    return ItemIndex.build(ids, x, factory="IVF16,Flat", **kwargs)


def tree_snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ------------------------------------------------------------------------ search
class TestSearch:
    def test_planted_neighbours_best_first(self):
        ids, scores = one_hot_index().search(planted_query(), k=3)
        assert list(ids) == ["item0", "item1", "item2"]
        assert all(isinstance(i, str) for i in ids)
        assert scores.dtype == np.float32
        # cosine: query normalized, items are unit vectors
        expected = np.array([1.0, 0.5, 0.25]) / np.linalg.norm([1.0, 0.5, 0.25])
        np.testing.assert_allclose(scores, expected, rtol=1e-5)
        assert np.all(np.diff(scores) < 0)

    def test_search_by_id_excludes_self(self):
        x = np.eye(DIM, dtype=np.float32)
        x[1] = x[0] + 0.1 * x[1]  # item1 is item0's nearest neighbour
        index = ItemIndex.build(ONE_HOT_IDS, x, use_gpu=False)
        ids, scores = index.search_by_id("item0", k=3)
        assert "item0" not in ids
        assert ids[0] == "item1"
        assert len(ids) == 3
        ids_self, scores_self = index.search_by_id("item0", k=2, exclude_self=False)
        assert list(ids_self) == ["item0", "item1"]
        assert scores_self[0] == pytest.approx(1.0, abs=1e-5)

    def test_search_by_unknown_id_raises(self):
        with pytest.raises(UnknownIdError, match="nope"):
            one_hot_index().search_by_id("nope")

    def test_k_larger_than_index_returns_fewer(self):
        ids, scores = one_hot_index().search(planted_query(), k=50)
        assert len(ids) == len(scores) == DIM
        assert sorted(ids) == sorted(ONE_HOT_IDS)
        assert "" not in ids
        assert np.all(np.isfinite(scores))

    def test_search_batch_pads_with_empty_and_neg_inf(self):
        index = ItemIndex.build(["a", "b", "c"], np.eye(3, dtype=np.float32), use_gpu=False)
        # width is capped at the index size (no huge allocation for k=10**9) ...
        ids, scores = index.search_batch(np.eye(3, dtype=np.float32)[:2], k=5)
        assert ids.shape == scores.shape == (2, 3)
        assert ids[0, 0] == "a" and ids[1, 0] == "b"
        assert np.isfinite(scores).all()
        # ... and rows with fewer eligible items are padded with "" / -inf
        ids, scores = index.search_batch(np.eye(3, dtype=np.float32)[:2], k=5, exclude=[["b", "c"], None])
        assert list(ids[0]) == ["a", "", ""] and np.isneginf(scores[0, 1:]).all()
        assert (ids[1] != "").all()

    def test_search_batch_rows_match_single_search(self):
        index = one_hot_index()
        rng = np.random.default_rng(3)
        queries = rng.normal(size=(5, DIM)).astype(np.float32)
        ids, scores = index.search_batch(queries, k=4)
        for q, row_ids, row_scores in zip(queries, ids, scores):
            one_ids, one_scores = index.search(q, k=4)
            assert list(one_ids) == list(row_ids)
            np.testing.assert_allclose(one_scores, row_scores, rtol=1e-6)

    def test_search_batch_per_query_exclude_pads(self):
        index = ItemIndex.build(["a", "b", "c"], np.eye(3, dtype=np.float32), use_gpu=False)
        q = np.eye(3, dtype=np.float32)[:2]
        ids, scores = index.search_batch(q, k=3, exclude=[["a", "b"], None])
        assert list(ids[0]) == ["c", "", ""]
        assert np.isneginf(scores[0, 1:]).all()
        assert ids[1, 0] == "b" and "" not in ids[1]

    def test_exclude_is_honoured(self):
        ids, _ = one_hot_index().search(planted_query(), k=2, exclude=["item0"])
        assert list(ids) == ["item1", "item2"]

    def test_exclude_more_items_than_k(self):
        excluded = ONE_HOT_IDS[:6]
        ids, scores = one_hot_index().search(planted_query(), k=3, exclude=excluded)
        # only item6 and item7 are eligible
        assert sorted(ids) == ["item6", "item7"]
        assert len(scores) == 2

    def test_exclude_everything_returns_empty(self):
        ids, scores = one_hot_index().search(planted_query(), k=3, exclude=ONE_HOT_IDS)
        assert len(ids) == len(scores) == 0

    def test_exclude_unknown_ids_is_harmless(self):
        ids, _ = one_hot_index().search(planted_query(), k=3, exclude=["not-there"])
        assert list(ids) == ["item0", "item1", "item2"]

    def test_exclude_on_ivf(self, ivf_data):
        ids, x = ivf_data
        index = ivf_index(ids, x)
        got, _ = index.search(x[0], k=10)
        excluded = list(got[:15])  # more than k
        got2, _ = index.search(x[0], k=10, exclude=excluded)
        assert len(got2) == 10
        assert not set(got2) & set(excluded)

    def test_l2_metric_larger_score_is_closer(self):
        pts = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [10.0, 0.0]], dtype=np.float32)
        index = ItemIndex.build(["p0", "p1", "p3", "p10"], pts, metric="l2", normalize=False, use_gpu=False)
        ids, scores = index.search(np.array([2.2, 0.0], dtype=np.float32), k=4)
        assert list(ids) == ["p3", "p1", "p0", "p10"]
        np.testing.assert_allclose(scores, [-0.64, -1.44, -4.84, -60.84], rtol=1e-4)
        assert np.all(np.diff(scores) < 0)

    def test_ip_without_normalize_uses_raw_dot(self):
        x = np.array([[1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
        index = ItemIndex.build(["a", "b"], x, normalize=False, use_gpu=False)
        ids, scores = index.search(np.array([2.0, 1.0], dtype=np.float32), k=2)
        assert list(ids) == ["b", "a"]
        np.testing.assert_allclose(scores, [3.0, 2.0])

    def test_int_ids_become_strings(self):
        index = ItemIndex.build([10, 20], np.eye(2, dtype=np.float32), use_gpu=False)
        assert index.ids == ["10", "20"]
        assert "10" in index
        ids, _ = index.search(np.array([1.0, 0.0]), k=1)
        assert ids[0] == "10"

    def test_search_before_add_raises_not_fitted(self):
        with pytest.raises(NotFittedError):
            ItemIndex(4, use_gpu=False).search(np.ones(4, dtype=np.float32))


# ---------------------------------------------------------------------- mutation
class TestMutation:
    def test_add_duplicate_ids_in_batch(self):
        with pytest.raises(ValueError, match="duplicates"):
            ItemIndex.build(["a", "b", "a"], np.eye(3, dtype=np.float32))

    def test_add_existing_id_mentions_upsert_and_changes_nothing(self):
        index = one_hot_index()
        before = index.get_vectors(ONE_HOT_IDS)
        with pytest.raises(ValueError, match="upsert"):
            index.add(["new", "item3"], np.ones((2, DIM), dtype=np.float32))
        assert "new" not in index
        assert len(index) == DIM
        np.testing.assert_array_equal(index.get_vectors(ONE_HOT_IDS), before)

    def test_add_incrementally(self):
        index = ItemIndex.build(["a"], np.eye(2, dtype=np.float32)[:1], use_gpu=False)
        index.add(["b"], np.eye(2, dtype=np.float32)[1:])
        assert index.ids == ["a", "b"]
        ids, _ = index.search(np.array([0.0, 1.0]), k=1)
        assert ids[0] == "b"

    def test_update_unknown_raises_and_changes_nothing(self):
        index = one_hot_index()
        before = index.get_vectors(ONE_HOT_IDS)
        with pytest.raises(UnknownIdError, match="zzz") as info:
            index.update(["item0", "zzz"], np.ones((2, DIM), dtype=np.float32))
        assert isinstance(info.value, KeyError) and isinstance(info.value, RecgenError)
        np.testing.assert_array_equal(index.get_vectors(ONE_HOT_IDS), before)
        assert index.ids == ONE_HOT_IDS

    def test_remove_unknown_raises_and_changes_nothing(self):
        index = one_hot_index()
        with pytest.raises(UnknownIdError, match="zzz"):
            index.remove(["item0", "zzz"])
        assert len(index) == DIM
        assert "item0" in index
        ids, _ = index.search(planted_query(), k=1)
        assert ids[0] == "item0"

    def test_remove_repeated_id(self):
        # regression: remove(["a", "a"]) used to pop "a" twice, raising a bare KeyError
        # after "a" had already been removed
        index = one_hot_index()
        index.remove(["item0", "item0"])
        assert len(index) == DIM - 1
        assert "item0" not in index

    def test_removed_ids_never_returned(self):
        index = one_hot_index(rebuild_fraction=0.9)  # stays below the rebuild threshold
        index.remove(["item0", "item2"])
        assert len(index) == DIM - 2
        assert index.ids == [i for i in ONE_HOT_IDS if i not in ("item0", "item2")]
        ids, _ = index.search(planted_query(), k=DIM)
        assert list(ids[:1]) == ["item1"]
        assert not {"item0", "item2"} & set(ids)
        assert len(ids) == DIM - 2
        with pytest.raises(UnknownIdError):
            index.get_vectors(["item0"])
        with pytest.raises(UnknownIdError):
            index.search_by_id("item0")

    def test_removing_many_triggers_rebuild(self):
        rng = np.random.default_rng(0)
        ids = [f"i{j}" for j in range(100)]
        x = rng.normal(size=(100, 16)).astype(np.float32)
        index = ItemIndex.build(ids, x, use_gpu=False, rebuild_fraction=0.2)
        removed = ids[::2]
        index.remove(removed)
        kept = ids[1::2]
        # the dead slots were compacted away
        assert index._index.ntotal == len(kept)
        assert len(index) == len(kept)
        assert index.ids == kept
        got, scores = index.search_batch(x, k=100)
        returned = set(got.ravel()) - {""}
        assert returned == set(kept)
        assert ((got != "").sum(axis=1) == len(kept)).all()
        # a kept item is still its own nearest neighbour after the rebuild
        for j in (1, 51, 99):
            assert index.search(x[j], k=1)[0][0] == ids[j]
        np.testing.assert_allclose(index.get_vectors(["i1"])[0], x[1] / np.linalg.norm(x[1]), rtol=1e-5)

    def test_remove_everything_then_search_and_add(self):
        # regression: searching an index whose items were all removed hit faiss's `assert k > 0`
        index = one_hot_index()
        index.remove(ONE_HOT_IDS)
        assert len(index) == 0 and index.ids == []
        ids, scores = index.search(planted_query(), k=3)
        assert len(ids) == len(scores) == 0
        bids, bscores = index.search_batch(np.eye(DIM, dtype=np.float32)[:2], k=2)
        assert (bids == "").all() and np.isneginf(bscores).all()
        index.add(["back"], np.eye(DIM, dtype=np.float32)[:1])
        assert index.search(planted_query(), k=3)[0].tolist() == ["back"]

    def test_remove_and_rebuild_on_ivf_keeps_training(self, ivf_data):
        ids, x = ivf_data
        index = ivf_index(ids, x)
        removed = set(ids[:900])
        index.remove(ids[:900])
        assert index.resolved_factory == "IVF16,Flat"
        assert len(index) == len(ids) - 900
        got, _ = index.search_batch(x[:50], k=20)
        assert not removed & set(got.ravel())
        assert index.search(x[1000], k=1)[0][0] == "p1000"

    def test_update_changes_results(self):
        index = one_hot_index()
        e7 = np.eye(DIM, dtype=np.float32)[7]
        index.update(["item0"], e7[None, :])
        ids, scores = index.search(e7, k=2)
        assert set(ids) == {"item0", "item7"}
        np.testing.assert_allclose(scores, [1.0, 1.0], rtol=1e-5)
        assert "item0" not in index.search(planted_query(), k=2)[0]
        assert len(index) == DIM

    def test_upsert_adds_and_replaces(self):
        index = one_hot_index()
        eye = np.eye(DIM, dtype=np.float32)
        index.upsert(["item1", "fresh"], np.stack([eye[5], eye[0]]))
        assert len(index) == DIM + 1
        assert "fresh" in index
        ids, scores = index.search(eye[0], k=2)
        assert set(ids) == {"item0", "fresh"}
        np.testing.assert_allclose(index.get_vectors(["item1"])[0], eye[5])

    def test_upsert_repeated_id_last_write_wins(self):
        index = one_hot_index()
        eye = np.eye(DIM, dtype=np.float32)
        index.upsert(["x", "x"], np.stack([eye[0], eye[1]]))
        assert len(index) == DIM + 1
        np.testing.assert_allclose(index.get_vectors(["x"])[0], eye[1])

    def test_many_upserts_keep_results_consistent(self):
        rng = np.random.default_rng(5)
        index = one_hot_index()
        for _ in range(20):  # repeated replacement crosses the rebuild threshold several times
            index.upsert(["item3"], rng.normal(size=(1, DIM)).astype(np.float32))
        assert len(index) == DIM
        ids, _ = index.search(planted_query(), k=DIM)
        assert sorted(ids) == sorted(ONE_HOT_IDS)


# -------------------------------------------------------------------- validation
class TestValidation:
    def test_wrong_dim_names_both_dims(self):
        index = ItemIndex(4, use_gpu=False)
        with pytest.raises(ValueError, match=r"dim 3.*expects 4"):
            index.add(["a"], np.ones((1, 3), dtype=np.float32))
        built = one_hot_index()
        with pytest.raises(ValueError, match=rf"dim 5.*expects {DIM}"):
            built.search(np.ones(5, dtype=np.float32))

    def test_rows_ids_mismatch(self):
        with pytest.raises(ValueError, match="3 rows but 2 ids"):
            ItemIndex.build(["a", "b"], np.eye(3, dtype=np.float32))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_rows(self, bad):
        x = np.eye(3, dtype=np.float32)
        x[1, 2] = bad
        with pytest.raises(ValueError, match=r"NaN or inf.*\[1\]"):
            ItemIndex.build(["a", "b", "c"], x)

    def test_non_finite_update_changes_nothing(self):
        index = one_hot_index()
        bad = np.full((1, DIM), np.nan, dtype=np.float32)
        with pytest.raises(ValueError, match="NaN"):
            index.update(["item0"], bad)
        with pytest.raises(ValueError, match="NaN"):
            index.search(bad[0])
        np.testing.assert_array_equal(index.get_vectors(["item0"]), np.eye(DIM, dtype=np.float32)[:1])

    def test_zero_rows_with_normalize(self):
        x = np.eye(3, dtype=np.float32)
        x[2] = 0
        with pytest.raises(ValueError, match=r"all-zero rows \[2\]"):
            ItemIndex.build(["a", "b", "c"], x)
        # without normalization a zero vector is legal
        index = ItemIndex.build(["a", "b", "c"], x, normalize=False, use_gpu=False)
        assert len(index) == 3

    def test_zero_query_with_normalize(self):
        with pytest.raises(ValueError, match="all-zero"):
            one_hot_index().search(np.zeros(DIM, dtype=np.float32))

    def test_three_d_arrays(self):
        cube = np.ones((2, 2, 2), dtype=np.float32)
        with pytest.raises(ValueError, match="2-D"):
            ItemIndex.build(["a", "b"], cube)
        index = ItemIndex(2, use_gpu=False)
        with pytest.raises(ValueError, match="2-D"):
            index.add(["a", "b"], cube)
        built = ItemIndex.build(["a", "b"], np.eye(2, dtype=np.float32), use_gpu=False)
        with pytest.raises(ValueError, match="2-D"):
            built.search_batch(cube)
        with pytest.raises(ValueError, match="1-D"):
            built.search(np.eye(2, dtype=np.float32))

    @pytest.mark.parametrize(
        "vectors",
        [np.array([["a", "b"], ["c", "d"]]), np.array([[1, None], [2, 3]], dtype=object), np.eye(2, dtype=bool)],
        ids=["str", "object", "bool"],
    )
    def test_non_numeric_vectors(self, vectors):
        with pytest.raises(TypeError, match="numeric"):
            ItemIndex(2, use_gpu=False).add(["a", "b"], vectors)

    @pytest.mark.parametrize("ids", [[1.5, "b"], [None, "b"], ["", "b"], [b"a", "b"], [True, "b"]])
    def test_ids_must_be_strings(self, ids):
        with pytest.raises(TypeError, match=r"ids\[0\]"):
            ItemIndex.build(ids, np.eye(2, dtype=np.float32))

    def test_single_string_as_ids(self):
        with pytest.raises(TypeError, match="single str"):
            ItemIndex.build("ab", np.eye(2, dtype=np.float32))
        with pytest.raises(TypeError, match="exclude"):
            one_hot_index().search(planted_query(), exclude="item0")

    @pytest.mark.parametrize("k", [0, -1, True, 2.5, "3"])
    def test_bad_k(self, k):
        index = one_hot_index()
        with pytest.raises(ValueError, match="k must be a positive int"):
            index.search(planted_query(), k=k)
        with pytest.raises(ValueError, match="k must be a positive int"):
            index.search_batch(planted_query()[None, :], k=k)

    def test_exclude_length_must_match_queries(self):
        with pytest.raises(ValueError, match="exclude has 1 entries but there are 2 queries"):
            one_hot_index().search_batch(np.eye(DIM, dtype=np.float32)[:2], exclude=[["item0"]])

    def test_bad_factory_string(self):
        with pytest.raises(ValueError, match="not-a-factory"):
            ItemIndex.build(["a", "b"], np.eye(2, dtype=np.float32), factory="not-a-factory")

    def test_ivf_with_too_few_training_vectors(self):
        ids, x = clustered(20, dim=8)
        index = ItemIndex(8, factory="IVF64,Flat", use_gpu=False)
        with pytest.raises(ValueError, match=r"'IVF64,Flat'.*at least 64 vectors.*got 20"):
            index.add(ids, x)
        assert len(index) == 0 and index.resolved_factory is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"dim": 0},
            {"dim": -2},
            {"dim": 2.0},
            {"metric": "cosine"},
            {"use_gpu": "yes"},
            {"rebuild_fraction": 0.0},
            {"rebuild_fraction": 1.5},
            {"nprobe": 0},
        ],
    )
    def test_bad_constructor_arguments(self, kwargs):
        kwargs = {"dim": 4, **kwargs}
        dim = kwargs.pop("dim")
        with pytest.raises(ValueError):
            ItemIndex(dim, **kwargs)


# ---------------------------------------------------------------- auto factory
class TestAutoFactory:
    @pytest.mark.parametrize("n", [500, 2000, 20_000, 1_000_000])
    def test_auto_factory_lists_get_enough_training_points(self, n):
        f = auto_factory(n, exact_threshold=500)
        assert f.startswith("IVF") and f.endswith(",Flat")
        nlist = int(f[3:].split(",")[0])
        assert nlist >= 1 and nlist & (nlist - 1) == 0  # a power of two
        assert nlist * 39 <= n

    def test_auto_factory_below_threshold_is_flat(self):
        assert auto_factory(499, exact_threshold=500) == "Flat"
        assert auto_factory(19_999) == "Flat"

    def test_auto_small_resolves_to_flat(self):
        ids, x = clustered(200)
        index = ItemIndex.build(ids, x, exact_threshold=500, use_gpu=False)
        assert index.factory == "auto"
        assert index.resolved_factory == "Flat"
        assert index.is_exact

    def test_auto_large_resolves_to_ivf_with_high_recall(self):
        ids, x = clustered(3000, seed=2)
        approx = ItemIndex.build(ids, x, exact_threshold=500, use_gpu=False)
        exact = ItemIndex.build(ids, x, factory="Flat", use_gpu=False)
        assert approx.resolved_factory == auto_factory(3000, exact_threshold=500)
        assert approx.resolved_factory.startswith("IVF")
        assert not approx.is_exact
        rng = np.random.default_rng(7)
        queries = x[rng.choice(len(x), 100, replace=False)] + 0.05 * rng.normal(size=(100, x.shape[1])).astype(np.float32)
        got, _ = approx.search_batch(queries, k=10)
        truth, _ = exact.search_batch(queries, k=10)
        recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth)])
        assert recall >= 0.9, f"recall@10 of {approx.resolved_factory} vs exact is {recall:.3f}"

    def test_rebuild_refactor_switches_to_ivf(self):
        ids, x = clustered(1200, seed=4)
        index = ItemIndex.build(ids[:100], x[:100], exact_threshold=500, use_gpu=False)
        index.add(ids[100:], x[100:])
        assert index.resolved_factory == "Flat"  # resolved once, at the first add
        index.rebuild(refactor=True)
        assert index.resolved_factory.startswith("IVF")
        assert len(index) == 1200
        assert index.search(x[5], k=1)[0][0] == "p5"


# ------------------------------------------------------------------ persistence
def _results(index: ItemIndex, queries: np.ndarray, k: int = 10, **kwargs):
    return index.search_batch(queries, k=k, **kwargs)


def _assert_same_results(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def _rewrite_manifest(directory, edit):
    """Edit a manifest the way an attacker who knows the format would: digest recomputed."""
    from recgen._io import _manifest_digest

    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    manifest["digest"] = _manifest_digest(manifest)
    path.write_text(json.dumps(manifest))


class TestPersistence:
    def test_round_trip_flat(self, tmp_path):
        index = one_hot_index()
        queries = np.random.default_rng(0).normal(size=(6, DIM)).astype(np.float32)
        out = index.save(tmp_path / "flat")
        assert out == tmp_path / "flat"
        loaded = ItemIndex.load(tmp_path / "flat", use_gpu=False)
        assert loaded.ids == index.ids
        assert loaded.resolved_factory == index.resolved_factory == "Flat"
        assert loaded.config() == index.config()
        _assert_same_results(_results(loaded, queries), _results(index, queries))
        # the loaded index is fully usable
        loaded.add(["extra"], np.ones((1, DIM), dtype=np.float32))
        loaded.remove(["item0"])
        assert len(loaded) == DIM

    def test_round_trip_ivf(self, tmp_path, ivf_data):
        ids, x = ivf_data
        index = ivf_index(ids, x, nprobe=4)
        index.remove(ids[:10])  # saved from a compacted copy
        index.save(tmp_path / "ivf")
        loaded = ItemIndex.load(tmp_path / "ivf", use_gpu=False)
        assert loaded.ids == index.ids
        assert loaded.resolved_factory == "IVF16,Flat"
        assert loaded.nprobe == 4
        assert faiss.extract_index_ivf(loaded._index).nprobe == 4
        assert not loaded.is_exact
        _assert_same_results(_results(loaded, x[:40]), _results(index, x[:40]))

    def test_round_trip_auto_ivf_keeps_resolved_factory(self, tmp_path):
        ids, x = clustered(2000, seed=3)
        index = ItemIndex.build(ids, x, exact_threshold=500, use_gpu=False)
        index.save(tmp_path / "auto")
        loaded = ItemIndex.load(tmp_path / "auto", use_gpu=False)
        assert loaded.factory == "auto"
        assert loaded.resolved_factory == index.resolved_factory
        assert loaded.resolved_factory.startswith("IVF")
        _assert_same_results(_results(loaded, x[:20]), _results(index, x[:20]))

    def test_round_trip_l2(self, tmp_path):
        pts = np.arange(10, dtype=np.float32).reshape(5, 2)
        index = ItemIndex.build(list("abcde"), pts, metric="l2", normalize=False, use_gpu=False)
        index.save(tmp_path / "l2")
        loaded = ItemIndex.load(tmp_path / "l2", use_gpu=False)
        assert loaded.metric == "l2" and loaded.normalize is False
        _assert_same_results(_results(loaded, pts, k=3), _results(index, pts, k=3))

    def test_round_trip_empty_index(self, tmp_path):
        ItemIndex(4, use_gpu=False).save(tmp_path / "empty")
        loaded = ItemIndex.load(tmp_path / "empty", use_gpu=False)
        assert len(loaded) == 0 and loaded.dim == 4
        with pytest.raises(NotFittedError):
            loaded.search(np.ones(4, dtype=np.float32))

    @pytest.mark.parametrize("with_removed", [False, True], ids=["clean", "with-removed-slots"])
    def test_save_does_not_modify_object(self, tmp_path, ivf_data, with_removed):
        ids, x = ivf_data
        index = ivf_index(ids, x, rebuild_fraction=1.0)  # keep the tombstones
        if with_removed:
            index.remove(ids[:100])
        inner = index._index
        ntotal = inner.ntotal
        n, listed = len(index), index.ids
        before = _results(index, x[:30], k=15, exclude=[ids[200:203]] * 30)
        plain_before = _results(index, x[:30], k=15)
        index.save(tmp_path / "idx")
        assert index._index is inner
        assert inner.ntotal == ntotal  # tombstoned slots still there, not compacted in place
        assert len(index) == n and index.ids == listed
        _assert_same_results(_results(index, x[:30], k=15, exclude=[ids[200:203]] * 30), before)
        _assert_same_results(_results(index, x[:30], k=15), plain_before)
        loaded = ItemIndex.load(tmp_path / "idx", use_gpu=False)
        assert loaded._index.ntotal == n
        _assert_same_results(_results(loaded, x[:30], k=15), plain_before)

    def test_saved_ids_are_plain_strings(self, tmp_path):
        one_hot_index().save(tmp_path / "idx")
        arr = np.load(tmp_path / "idx" / "ids.npy", allow_pickle=False)
        assert arr.dtype.kind == "U"
        assert arr.tolist() == ONE_HOT_IDS
        assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
            "ids.npy",
            "index.faiss",
            "manifest.json",
            "vectors.npy",
        ]
        manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
        assert manifest["kind"] == "item-index"
        assert set(manifest["files"]) == {"ids.npy", "vectors.npy", "index.faiss"}

    def test_save_over_existing_directory_replaces_it(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        (target / "stray.txt").write_text("old content")
        other = ItemIndex.build(["x", "y"], np.eye(2, dtype=np.float32), use_gpu=False)
        other.save(target)
        assert not (target / "stray.txt").exists()
        assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temp or .old dirs beside it
        loaded = ItemIndex.load(target, use_gpu=False)
        assert loaded.ids == ["x", "y"] and loaded.dim == 2

    def test_failed_save_leaves_old_directory_intact(self, tmp_path, monkeypatch):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        snapshot = {p: p.read_bytes() for p in target.iterdir()}

        def boom(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(faiss, "write_index", boom)
        other = ItemIndex.build(["x", "y"], np.eye(2, dtype=np.float32), use_gpu=False)
        with pytest.raises(OSError, match="disk full"):
            other.save(target)
        monkeypatch.undo()
        assert [p.name for p in tmp_path.iterdir()] == ["idx"]
        assert {p: p.read_bytes() for p in target.iterdir()} == snapshot
        assert ItemIndex.load(target, use_gpu=False).ids == ONE_HOT_IDS

    @pytest.mark.parametrize("name", ["vectors.npy", "index.faiss", "ids.npy"])
    def test_tampered_file_fails_checksum(self, tmp_path, name):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        path = target / name
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01  # a one-bit change in the payload, the file stays parseable
        path.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="checksum"):
            ItemIndex.load(target, use_gpu=False)

    def test_verify_false_skips_checksums(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        path = target / "vectors.npy"
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))
        assert len(ItemIndex.load(target, use_gpu=False, verify=False)) == DIM

    def test_missing_manifest(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        (target / "manifest.json").unlink()
        with pytest.raises(ArtifactError, match="manifest.json is missing"):
            ItemIndex.load(target)
        with pytest.raises(ArtifactError, match="missing"):
            ItemIndex.load(tmp_path / "does-not-exist")

    def test_missing_listed_file(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        (target / "index.faiss").unlink()
        with pytest.raises(ArtifactError, match="index.faiss is missing"):
            ItemIndex.load(target)

    @pytest.mark.parametrize("listed", ["../x", "sub/../../x"])
    def test_manifest_path_outside_directory_rejected(self, tmp_path, listed):
        from recgen._io import sha256_file

        target = tmp_path / "idx"
        one_hot_index().save(target)
        outside = tmp_path / "x"
        outside.write_bytes(b"not part of the artefact")
        digest = sha256_file(outside)  # checksum matches: only the path is wrong
        _rewrite_manifest(target, lambda m: m["files"].update({listed: digest}))
        with pytest.raises(ArtifactError, match="outside"):
            ItemIndex.load(target)

    def test_manifest_absolute_path_rejected(self, tmp_path):
        from recgen._io import sha256_file

        target = tmp_path / "idx"
        one_hot_index().save(target)
        outside = tmp_path / "x"
        outside.write_bytes(b"elsewhere")
        _rewrite_manifest(target, lambda m: m["files"].update({str(outside): sha256_file(outside)}))
        with pytest.raises(ArtifactError, match="outside"):
            ItemIndex.load(target)

    def test_object_array_ids_refused(self, tmp_path):
        from recgen._io import sha256_file

        target = tmp_path / "idx"
        one_hot_index().save(target)
        np.save(target / "ids.npy", np.array(ONE_HOT_IDS, dtype=object), allow_pickle=True)
        # refresh the checksum so only the pickle refusal can stop the load
        _rewrite_manifest(target, lambda m: m["files"].update({"ids.npy": sha256_file(target / "ids.npy")}))
        with pytest.raises(ArtifactError, match="allow_pickle"):
            ItemIndex.load(target)

    def test_wrong_kind_and_bad_json(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        _rewrite_manifest(target, lambda m: m.update(kind="user-profiles"))
        with pytest.raises(ArtifactError, match="user-profiles"):
            ItemIndex.load(target)
        (target / "manifest.json").write_text("{not json")
        with pytest.raises(ArtifactError, match="not valid JSON"):
            ItemIndex.load(target)

    def test_invalid_config_in_manifest(self, tmp_path):
        target = tmp_path / "idx"
        one_hot_index().save(target)
        _rewrite_manifest(target, lambda m: m["config"].update(metric="cosine"))
        with pytest.raises(ArtifactError, match="invalid config"):
            ItemIndex.load(target)


# -------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.skipif(_num_gpus() == 0, reason="needs faiss-gpu and a CUDA device (faiss.get_num_gpus() == 0)")
@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_gpu_search_matches_cpu(factory, ivf_data):
    ids, x = ivf_data
    cpu = ItemIndex.build(ids, x, factory=factory, use_gpu=False)
    gpu = ItemIndex.build(ids, x, factory=factory, use_gpu=True)
    q = x[:50]
    c_ids, c_scores = cpu.search_batch(q, k=10)
    g_ids, g_scores = gpu.search_batch(q, k=10)
    assert gpu._gpu_index is not None
    np.testing.assert_allclose(g_scores, c_scores, rtol=1e-4, atol=1e-4)
    assert np.mean(c_ids == g_ids) > 0.99  # near-ties may swap on a different device
    # tombstones and exclude behave the same on the GPU
    for index in (cpu, gpu):
        index.remove(ids[:5])
    excl = [ids[10:20]] * len(q)
    c_ids, _ = cpu.search_batch(q, k=10, exclude=excl)
    g_ids, _ = gpu.search_batch(q, k=10, exclude=excl)
    assert not set(g_ids.ravel()) & set(ids[:20])
    assert np.mean(c_ids == g_ids) > 0.99


@pytest.mark.skipif(_num_gpus() > 0, reason="a GPU is present; this checks the error raised without one")
def test_use_gpu_true_without_gpu_raises_missing_extra():
    index = ItemIndex.build(["a", "b"], np.eye(2, dtype=np.float32), use_gpu=True)
    with pytest.raises(MissingExtraError, match="pip install"):
        index.search(np.array([1.0, 0.0], dtype=np.float32))


def test_use_gpu_auto_falls_back_to_cpu():
    index = ItemIndex.build(["a", "b"], np.eye(2, dtype=np.float32))  # use_gpu="auto"
    assert index.search(np.array([1.0, 0.0], dtype=np.float32), k=1)[0][0] == "a"


# ---------------------------------------------------------------------- threads
def test_concurrent_search_while_upserting():
    rng = np.random.default_rng(11)
    dim, n0 = 16, 300
    base_ids = [f"b{i}" for i in range(n0)]
    index = ItemIndex.build(base_ids, rng.normal(size=(n0, dim)).astype(np.float32), use_gpu=False)
    gone = set(base_ids[:30])
    index.remove(sorted(gone))
    new_ids = [f"n{i}" for i in range(200)]
    allowed = (set(base_ids) - gone) | set(new_ids)
    queries = rng.normal(size=(64, dim)).astype(np.float32)
    errors: list[BaseException] = []
    bad: list[str] = []
    stop = threading.Event()

    def writer():
        try:
            w_rng = np.random.default_rng(1)
            for j in range(0, len(new_ids), 5):
                index.upsert(new_ids[j : j + 5], w_rng.normal(size=(5, dim)).astype(np.float32))
                # replacing existing vectors leaves tombstones and forces rebuilds
                index.upsert(base_ids[40 + j : 45 + j], w_rng.normal(size=(5, dim)).astype(np.float32))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed):
        r_rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = queries[r_rng.integers(len(queries))]
                ids, _ = index.search(q, k=10, exclude=["b50"] if seed % 2 else None)
                bids, _ = index.search_batch(queries[:4], k=10)
                sims, _ = index.search_by_id("b100", k=5)
                for got in (ids, bids.ravel(), sims):
                    bad.extend(i for i in got if i and i not in allowed)
                if len(ids) != 10 or len(set(ids)) != len(ids):
                    bad.append(f"bad result row {list(ids)}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert not bad, bad[:10]
    assert len(index) == n0 - len(gone) + len(new_ids)
    assert set(index.ids) == allowed
