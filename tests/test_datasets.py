"""The bundled sample catalog: schema, determinism, ground-truth tastes, faithful reviews."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recgen.catalog.data import INTERACTION_COLUMNS, ITEM_COLUMNS, REVIEW_COLUMNS, CatalogData
from recgen.datasets import CATEGORIES, COLOURS, MATERIALS, PATTERNS, draw_item_image, make_sample_catalog

SMALL = dict(n_items=60, n_users=20, image_size=32)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> CatalogData:
    return make_sample_catalog(tmp_path_factory.mktemp("sample"))


def _attr(data: CatalogData, key: str) -> pd.Series:
    return data.items.set_index("item_id")["attributes"].map(lambda a: a[key])


def _pngs(data: CatalogData) -> dict[str, bytes]:
    return {row.item_id: Path(row.image_path).read_bytes() for row in data.items.itertuples()}


def test_schema_columns_and_files(sample):
    assert tuple(sample.items.columns) == ITEM_COLUMNS
    assert tuple(sample.reviews.columns) == REVIEW_COLUMNS
    assert tuple(sample.interactions.columns) == INTERACTION_COLUMNS
    assert list(sample.users.columns) == ["user_id", "taste_categories", "taste_colours", "taste_patterns"]
    assert sample.name == "sample"
    assert len(sample.items) == 240 and len(sample.users) == 120
    assert sample.items["item_id"].is_unique
    assert sample.items["item_id"].iloc[0] == "SKU-0001" and sample.users["user_id"].iloc[0] == "U0001"
    assert sample.interactions["timestamp"].dtype == np.int64
    assert sample.reviews["timestamp"].dtype == np.int64
    assert sample.interactions["rating"].between(1, 5).all()
    assert set(sample.interactions["event"]) <= {"purchase", "view"}
    for row in sample.items.itertuples():
        path = Path(row.image_path)
        assert path.is_absolute() and path.parent == sample.image_root and path.name == f"{row.item_id}.png"
        assert set(row.attributes) == {"category", "colour", "pattern", "material"}
        assert all(isinstance(v, str) for v in row.attributes.values())
    with Image.open(sample.items["image_path"].iloc[0]) as img:
        assert img.size == (96, 96) and img.mode == "RGB"
    root = sample.image_root.parent
    for name in ("items.csv", "reviews.csv", "interactions.csv", "users.csv", "cold_start_items.txt"):
        assert (root / name).is_file(), name


def test_titles_and_descriptions_name_the_attributes(sample):
    for row in sample.items.itertuples():
        a = row.attributes
        assert row.title == f"{a['colour'].capitalize()} {a['pattern']} {a['category']}"
        text = row.description.lower()
        for key in ("colour", "pattern", "category", "material"):
            assert a[key] in text, (row.item_id, key, row.description)
        assert row.description.count(".") == 2


def test_same_seed_is_identical_across_directories(tmp_path):
    a = make_sample_catalog(tmp_path / "a", seed=3, **SMALL)
    b = make_sample_catalog(tmp_path / "b", seed=3, **SMALL)
    pd.testing.assert_frame_equal(a.items.drop(columns="image_path"), b.items.drop(columns="image_path"))
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.reviews, b.reviews)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert a.items.attrs["cold_start_item_ids"] == b.items.attrs["cold_start_item_ids"]
    assert _pngs(a) == _pngs(b)
    for name in ("items.csv", "reviews.csv", "interactions.csv", "users.csv", "cold_start_items.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seed_differs(tmp_path):
    a = make_sample_catalog(tmp_path / "a", seed=0, **SMALL)
    b = make_sample_catalog(tmp_path / "b", seed=1, **SMALL)
    assert a.items["title"].tolist() != b.items["title"].tolist()
    assert not a.interactions.equals(b.interactions)
    assert a.users["taste_categories"].tolist() != b.users["taste_categories"].tolist()
    pa, pb = _pngs(a), _pngs(b)
    assert any(pa[i] != pb[i] for i in pa)


def test_combinations_are_unique(sample):
    combos = list(zip(_attr(sample, "category"), _attr(sample, "colour"), _attr(sample, "pattern")))
    assert len(set(combos)) == len(combos)
    assert set(_attr(sample, "category")) <= set(CATEGORIES)
    assert set(_attr(sample, "colour")) <= set(COLOURS)
    assert set(_attr(sample, "pattern")) <= set(PATTERNS)
    assert set(_attr(sample, "material")) <= set(MATERIALS)


def test_too_many_items_raises(tmp_path):
    maximum = len(CATEGORIES) * len(COLOURS) * len(PATTERNS)
    with pytest.raises(ValueError, match=rf"n_items={maximum + 1}.*{maximum}"):
        make_sample_catalog(tmp_path, n_items=maximum + 1)
    assert not any(tmp_path.iterdir())  # nothing written
    with pytest.raises(ValueError, match="n_users"):
        make_sample_catalog(tmp_path, n_users=0)
    with pytest.raises(TypeError, match="seed"):
        make_sample_catalog(tmp_path, seed=1.5)


def test_interactions_follow_latent_tastes(sample):
    cats, cols = _attr(sample, "category"), _attr(sample, "colour")
    cold = set(sample.items.attrs["cold_start_item_ids"])
    warm = [i for i in sample.items["item_id"] if i not in cold]
    users = sample.users.set_index("user_id")
    observed, uniform = [], []
    for user_id, group in sample.interactions.groupby("user_id"):
        tc, tl = set(users.loc[user_id, "taste_categories"]), set(users.loc[user_id, "taste_colours"])
        assert len(tc) == 2 and len(tl) == 2 and len(users.loc[user_id, "taste_patterns"]) == 1
        assert 15 <= len(group) <= 40
        assert group["item_id"].is_unique
        observed.append(np.mean([cats[i] in tc or cols[i] in tl for i in group["item_id"]]))
        uniform.append(np.mean([cats[i] in tc or cols[i] in tl for i in warm]))
    observed_share, uniform_share = float(np.mean(observed)), float(np.mean(uniform))
    # By chance a preferred category (2 of 8) or colour (2 of 10) covers ~40% of the items.
    assert 0.35 < uniform_share < 0.45
    assert 0.65 <= observed_share <= 0.85, observed_share
    assert observed_share > uniform_share + 0.2
    # ...and users do explore: most users have at least one interaction outside their tastes.
    assert np.mean(np.array(observed) < 1.0) > 0.8


def test_ratings_are_higher_for_matching_items(sample):
    cats = _attr(sample, "category")
    users = sample.users.set_index("user_id")
    match = [cats[r.item_id] in users.loc[r.user_id, "taste_categories"] for r in sample.interactions.itertuples()]
    ratings = sample.interactions["rating"].to_numpy()
    assert ratings[np.array(match)].mean() > ratings[~np.array(match)].mean() + 1.0


def test_timestamps_increase_per_user(sample):
    for _, group in sample.interactions.groupby("user_id", sort=False):
        ts = group["timestamp"].to_numpy()
        assert ts[0] > 1_700_000_000 and (np.diff(ts) > 0).all()
    merged = sample.reviews.merge(sample.interactions, on=["user_id", "item_id"], suffixes=("", "_inter"))
    assert len(merged) == len(sample.reviews)
    assert (merged["timestamp"] > merged["timestamp_inter"]).all()
    assert (merged["rating"] == merged["rating_inter"]).all()


def test_cold_start_items_have_no_interactions(sample):
    cold = sample.items.attrs["cold_start_item_ids"]
    assert len(cold) == 24
    assert set(cold) <= set(sample.items["item_id"])
    assert not set(cold) & set(sample.interactions["item_id"])
    assert not set(cold) & set(sample.reviews["item_id"])
    written = (sample.image_root.parent / "cold_start_items.txt").read_text().split()
    assert written == cold


def _forms() -> dict[str, dict[str, set[str]]]:
    """Word forms a text may use for each attribute value."""
    pattern_forms = {
        "solid": {"solid"},
        "striped": {"striped", "stripe", "stripes"},
        "polka-dot": {"polka-dot", "polka", "dot", "dots", "dotted"},
        "checkered": {"checkered", "check", "checks", "checked"},
        "zigzag": {"zigzag", "zigzags"},
    }
    return {
        "category": {c: {c, c + "s", c + "'s"} for c in CATEGORIES},
        "colour": {c: {c} for c in COLOURS},
        "pattern": pattern_forms,
        "material": {m: {m} for m in MATERIALS},
    }


def test_reviews_mention_only_the_items_own_attributes(sample):
    attrs = sample.items.set_index("item_id")["attributes"]
    forms = _forms()
    word = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
    assert (sample.reviews["text"].str.len() > 0).all()
    assert 0.3 < len(sample.reviews) / len(sample.interactions) < 0.5
    for review in sample.reviews.itertuples():
        tokens = set(word.findall(review.text.lower()))
        own = attrs[review.item_id]
        mentioned = 0
        for key, values in forms.items():
            for value, value_forms in values.items():
                if value != own[key]:
                    assert not tokens & value_forms, (review.text, own)
                else:
                    mentioned += bool(tokens & value_forms)
        assert mentioned >= 2, review.text


def test_review_sentiment_matches_rating(sample):
    negative = sample.reviews[sample.reviews["rating"] <= 2]["text"]
    positive = sample.reviews[sample.reviews["rating"] >= 4]["text"]
    assert len(negative) and len(positive)
    bad_words = re.compile(r"disappointed|flimsy|blotchy|faded|returned", re.I)
    assert negative.str.contains(bad_words).all()
    assert not positive.str.contains(bad_words).any()


def test_csv_files_hold_the_frames(sample):
    root = sample.image_root.parent
    items = pd.read_csv(root / "items.csv")
    assert tuple(items.columns) == ITEM_COLUMNS
    assert [json.loads(a) for a in items["attributes"]] == sample.items["attributes"].tolist()
    assert (root / items["image_path"].iloc[0]).resolve() == Path(sample.items["image_path"].iloc[0])
    users = pd.read_csv(root / "users.csv")
    assert [json.loads(t) for t in users["taste_colours"]] == sample.users["taste_colours"].tolist()
    inter = pd.read_csv(root / "interactions.csv")
    assert inter["timestamp"].tolist() == sample.interactions["timestamp"].tolist()
    reviews = pd.read_csv(root / "reviews.csv")
    assert reviews["text"].tolist() == sample.reviews["text"].tolist()


def test_existing_directory_is_reused_and_rebuilt_on_new_parameters(tmp_path):
    make_sample_catalog(tmp_path, seed=5, **SMALL)
    png = tmp_path / "images" / "SKU-0001.png"
    before = png.stat().st_mtime_ns
    os.utime(png, ns=(before - 10**9, before - 10**9))
    make_sample_catalog(tmp_path, seed=5, **SMALL)
    assert png.stat().st_mtime_ns == before - 10**9  # not redrawn
    stamp = json.loads((tmp_path / "sample.json").read_text())
    assert stamp["seed"] == 5 and stamp["n_items"] == SMALL["n_items"]

    smaller = make_sample_catalog(tmp_path, seed=5, n_items=30, n_users=10, image_size=32)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(
        f"{i}.png" for i in smaller.items["item_id"]
    )
    assert not list(tmp_path.rglob("*.tmp"))


def test_default_directory_is_keyed_by_parameters(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = make_sample_catalog(seed=2, n_items=20, n_users=5, image_size=24)
    assert data.image_root == tmp_path / "recgen-sample-2-20-5-24" / "images"
    assert Path(data.items["image_path"].iloc[0]).is_file()


def test_draw_item_image():
    img = draw_item_image("mug", "teal", "striped", size=64)
    assert img.size == (64, 64) and img.mode == "RGB"
    assert img.tobytes() == draw_item_image("mug", "teal", "striped", size=64).tobytes()
    jittered = [draw_item_image("mug", "teal", "striped", size=64, rng=k).tobytes() for k in (0, 1)]
    assert jittered[0] != jittered[1]
    # The item's colour dominates the non-background pixels.
    pixels = np.asarray(draw_item_image("lamp", "red", "solid", size=64)).reshape(-1, 3).astype(int)
    reddish = (pixels[:, 0] > 150) & (pixels[:, 1] < 90) & (pixels[:, 2] < 90)
    assert reddish.mean() > 0.1
    with pytest.raises(ValueError, match="category"):
        draw_item_image("sofa", "red", "solid")
    with pytest.raises(ValueError, match="colour"):
        draw_item_image("mug", "white", "solid")
    with pytest.raises(ValueError, match="size"):
        draw_item_image("mug", "red", "solid", size=4)
