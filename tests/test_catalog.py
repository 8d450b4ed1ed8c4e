"""Catalog: validation, loaders and the SQLAlchemy store."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recgen.catalog import (
    CatalogData,
    CatalogStore,
    IngestResult,
    ValidationReport,
    load_frames,
    read_table,
    validate_interactions,
    validate_items,
    validate_reviews,
)
from recgen.catalog.data import INTERACTION_COLUMNS, ITEM_COLUMNS, REVIEW_COLUMNS
from recgen.datasets import load_clothing_reviews, load_movielens_posters
from recgen.errors import UnknownIdError, ValidationError


def make_image(path: Path, color=(200, 30, 30), size=(16, 12), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


@pytest.fixture
def catalog(tmp_path) -> CatalogData:
    imgs = tmp_path / "imgs"
    make_image(imgs / "a.png")
    make_image(imgs / "b.jpg", color=(0, 0, 255))
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Red shirt", "  Blue hat ", "Plain sock"],
            "description": ["A red shirt.", None, "Grey."],
            "attributes": [{"color": "red", "size": 2}, '{"color": "blue"}', None],
            "image_path": ["a.png", str(imgs / "b.jpg"), None],
            "extra": [1, 2, 3],  # ignored
        }
    )
    reviews = pd.DataFrame(
        {
            "item_id": ["a", "b", "a"],
            "user_id": ["u1", None, 7],
            "rating": [5, "4.5", 3.0],
            "text": ["Great shirt", "Nice hat", "ok"],
            "timestamp": [100, "2021-01-01T00:00:00Z", None],
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["a", "b", "c"],
            "timestamp": [10, 20, 30],
            "rating": [5.0, np.nan, 2.0],
            "event": ["rating", None, "click"],
        }
    )
    return CatalogData(items=items, reviews=reviews, interactions=interactions, name="t", image_root=imgs)


def test_validate_normalizes_types(catalog):
    items, rep = validate_items(catalog.items, image_root=catalog.image_root)
    assert not rep and rep.n_checked == 3
    assert list(items.columns) == [*ITEM_COLUMNS, "image_sha256"]
    assert items["title"].tolist() == ["Red shirt", "Blue hat", "Plain sock"]
    assert items["description"].tolist() == ["A red shirt.", "", "Grey."]
    assert items["attributes"].tolist() == [{"color": "red", "size": "2"}, {"color": "blue"}, {}]
    assert items["image_path"][0] == str((catalog.image_root / "a.png").resolve())
    assert items["image_path"][2] is None
    assert len(items["image_sha256"][0]) == 64 and items["image_sha256"][2] is None

    reviews, rep = validate_reviews(catalog.reviews, known_item_ids={"a", "b"})
    assert not rep
    assert reviews["user_id"].tolist() == ["u1", None, "7"]
    assert reviews["rating"].dtype == np.float64 and reviews["rating"].tolist() == [5.0, 4.5, 3.0]
    assert reviews["timestamp"].dtype == np.int64
    assert reviews["timestamp"].tolist() == [100, 1609459200, 0]

    inter, rep = validate_interactions(catalog.interactions)
    assert not rep
    assert inter["event"].tolist() == ["rating", "interaction", "click"]
    assert np.isnan(inter["rating"][1])


def test_ids_and_timestamps_accept_common_forms():
    df = pd.DataFrame(
        {
            "user_id": [1, 2.0, " u3 ", "4"],
            "item_id": [42, 42.0, "42", "007"],
            "timestamp": [
                pd.Timestamp("2020-01-01", tz="UTC"),
                "1577836800",
                "2020-01-01T01:00:00+01:00",
                1577836800.0,
            ],
        }
    )
    clean, rep = validate_interactions(df)
    assert not rep, rep.format()
    assert clean["user_id"].tolist() == ["1", "2", "u3", "4"]
    assert clean["item_id"].tolist() == ["42", "42", "42", "007"]
    assert clean["timestamp"].tolist() == [1577836800] * 4
    dt = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": pd.to_datetime(["2020-01-01"])})
    assert validate_interactions(dt)[0]["timestamp"].tolist() == [1577836800]


def test_round_trip_through_sqlite(tmp_path, catalog):
    with CatalogStore(tmp_path / "sub" / "recgen.db") as store:
        assert store.url.startswith("sqlite:///")
        result = store.ingest(catalog)
        assert isinstance(result, IngestResult)
        assert not result.report
        assert (result.items_added, result.reviews_added, result.interactions_added) == (3, 3, 3)
        assert store.counts() == {"items": 3, "reviews": 3, "interactions": 3}

        items, _ = validate_items(catalog.items, image_root=catalog.image_root)
        got = store.items()
        assert list(got.columns) == [*ITEM_COLUMNS, "image_sha256", "content_hash"]
        pd.testing.assert_frame_equal(got.drop(columns="content_hash"), items)

        reviews, _ = validate_reviews(catalog.reviews)
        key = ["item_id", "timestamp", "text"]
        pd.testing.assert_frame_equal(
            store.reviews().sort_values(key).reset_index(drop=True),
            reviews.sort_values(key).reset_index(drop=True),
        )
        inter, _ = validate_interactions(catalog.interactions)
        pd.testing.assert_frame_equal(store.interactions(), inter)

        back = store.catalog(name="x")
        assert back.name == "x" and len(back.items) == 3
        assert list(back.reviews.columns) == list(REVIEW_COLUMNS)
        assert list(back.interactions.columns) == list(INTERACTION_COLUMNS)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlalchemy_url_is_used_as_is(tmp_path, catalog):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    with CatalogStore(url) as store:
        assert store.url == url
        store.ingest(items=catalog.items, image_root=catalog.image_root)
        assert store.counts()["items"] == 3


def test_bad_rows_are_reported_not_dropped(tmp_path):
    imgs = tmp_path / "imgs"
    good = make_image(imgs / "good.png")
    (imgs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (imgs / "empty.jpg").write_bytes(b"")
    jpg = make_image(imgs / "full.jpg", size=(64, 64))
    data = jpg.read_bytes()
    (imgs / "truncated.jpg").write_bytes(data[: len(data) // 2])
    items = pd.DataFrame(
        {
            "item_id": ["a", None, "", "a", "b", "c", "d", "e", "f", "g", "h"],
            "title": ["A", "no id", "empty id", "dup", "B", "C", "D", "E", ["list"], None, "H"],
            "image_path": [
                str(good), None, None, None, "corrupt.png", "empty.jpg", "truncated.jpg",
                "missing.png", None, None, None,
            ],
            "attributes": [None] * 10 + ["[1, 2]"],
        }
    )
    clean, rep = validate_items(items, source="items.csv", image_root=imgs)
    assert clean["item_id"].tolist() == ["a"]
    # every input row is either clean or reported
    assert rep.n_bad_rows + len(clean) == len(items)
    reasons = {r.row: r for r in rep.rows}
    assert reasons[2].reason == "missing item_id" and reasons[2].column == "item_id"
    assert reasons[3].reason == "missing item_id"
    assert "duplicate item_id (first seen in row 1)" in reasons[4].reason
    assert reasons[5].column == "image_path" and reasons[5].reason.startswith("image")
    assert "empty (0 bytes)" in reasons[6].reason
    assert "truncated" in reasons[7].reason
    assert "not found" in reasons[8].reason
    assert reasons[9].column == "title" and "list" in reasons[9].reason
    assert reasons[10].reason == "missing title"
    assert reasons[11].column == "attributes"
    text = rep.format()
    assert "items.csv row 4, column 'item_id': duplicate item_id" in text
    frame = rep.to_frame()
    assert list(frame.columns) == ["source", "row", "column", "value", "reason"]
    assert len(frame) == len(rep)


def test_decompression_bomb_is_a_bad_row(tmp_path):
    big = tmp_path / "big.png"
    Image.new("1", (8000, 7000)).save(big)  # 56 MP > 50 MP cap, tiny file
    clean, rep = validate_items(pd.DataFrame({"item_id": ["x"], "title": ["X"], "image_path": [str(big)]}))
    assert clean.empty and "decompression bomb" in rep.rows[0].reason


def test_bad_ratings_text_and_timestamps():
    reviews = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "a", "a", "a", "zz", "a", "a"],
            "rating": [np.nan, np.inf, "abc", 11, 4, None, 4, 3, [1]],
            "text": ["t", "t", "t", "t", "  ", "t", "t", "t", "t"],
            "timestamp": [0, 0, 0, 0, 0, 0, 0, "not a date", 0],
        }
    )
    clean, rep = validate_reviews(reviews, known_item_ids={"a"})
    assert clean.empty
    by_row = {r.row: r.reason for r in rep.rows}
    assert by_row == {
        1: "NaN rating",
        2: "infinite rating",
        3: "rating is not a number",
        4: "rating out of range 0..10",
        5: "empty review text",
        6: "missing rating",
        7: "unknown item_id (not in the catalog's items)",
        8: "unparsable timestamp",
        9: "rating is not a number",
    }
    assert "row 1, column 'rating': NaN rating (value: nan)" in rep.format()

    inter = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", None],
            "item_id": ["a", "a", "a", "a", "a"],
            "timestamp": [1, 2, 3, None, 5],
            "rating": [np.nan, "x", np.inf, 1, 1],
        }
    )
    clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == [1]  # NaN rating is fine for interactions
    assert [r.reason for r in rep.rows] == [
        "rating is not a number",
        "infinite rating",
        "missing timestamp",
        "missing user_id",
    ]


def test_missing_required_column_raises():
    with pytest.raises(ValidationError, match=r"items\.csv.*'title'.*columns found: \['item_id', 'name'\]"):
        validate_items(pd.DataFrame({"item_id": ["a"], "name": ["A"]}), source="items.csv")
    with pytest.raises(ValidationError, match="rating"):
        validate_reviews(pd.DataFrame({"item_id": ["a"], "text": ["t"]}))


def test_non_utf8_csv_reports_file_row_and_column(tmp_path):
    path = tmp_path / "items.csv"
    path.write_bytes(b"item_id,title,description\n007,Fine,ok\n2,Caf\xe9 latte,ok\n3,Tea,b\xffd\n")
    df = read_table(path)
    assert df["item_id"].tolist() == ["007", "2", "3"]
    with CatalogStore(tmp_path / "db.sqlite") as store:
        result = store.ingest(items=path, check_images=False)
        assert store.items()["item_id"].tolist() == ["007"]
    rows = [(r.source, r.row, r.column) for r in result.report.rows]
    assert rows == [(str(path), 2, "title"), (str(path), 3, "description")]
    assert all("not valid UTF-8" in r.reason for r in result.report.rows)
    assert f"{path} row 2, column 'title': not valid UTF-8" in result.report.format()


def test_on_error_raise_stores_nothing_and_keeps_earlier_data(tmp_path, catalog):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(catalog)
        before = (store.items(), store.counts())
        bad_items = pd.DataFrame({"item_id": ["new", None], "title": ["New", "x"]})
        bad_inter = pd.DataFrame({"user_id": ["u9"], "item_id": ["a"], "timestamp": [99]})
        with pytest.raises(ValidationError) as err:
            store.ingest(items=bad_items, interactions=bad_inter, on_error="raise")
        assert isinstance(err.value.report, ValidationReport) and len(err.value.report) == 1
        assert "missing item_id" in str(err.value)
        pd.testing.assert_frame_equal(store.items(), before[0])
        assert store.counts() == before[1]


def test_reingest_is_idempotent(tmp_path, catalog):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(catalog)
        counts, items = store.counts(), store.items()
        again = store.ingest(catalog)
        assert (again.items_added, again.items_updated, again.items_unchanged) == (0, 0, 3)
        assert (again.reviews_added, again.interactions_added) == (0, 0)
        assert "0 added" in str(again)
        assert store.counts() == counts
        pd.testing.assert_frame_equal(store.items(), items)


def test_changed_item_is_updated(tmp_path, catalog):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(catalog)
        changed = catalog.items.copy()
        changed.loc[1, "title"] = "Blue cap"
        make_image(catalog.image_root / "a.png", color=(1, 2, 3))  # same path, new bytes
        result = store.ingest(items=changed, image_root=catalog.image_root)
        assert (result.items_added, result.items_updated, result.items_unchanged) == (0, 2, 1)
        got = store.items().set_index("item_id")
        assert got.loc["b", "title"] == "Blue cap"
        assert store.counts()["reviews"] == 3


def test_generic_dialect_fallback(tmp_path, catalog, monkeypatch):
    """The select-then-insert path used for dialects without ON CONFLICT support."""
    monkeypatch.setattr(CatalogStore, "_dialect", lambda self: "generic")
    with CatalogStore(tmp_path / "db.sqlite") as store:
        first = store.ingest(catalog)
        assert (first.items_added, first.reviews_added, first.interactions_added) == (3, 3, 3)
        again = store.ingest(catalog)
        assert (again.items_unchanged, again.reviews_added, again.interactions_added) == (3, 0, 0)
        changed = catalog.items.copy()
        changed.loc[2, "description"] = "Now green."
        result = store.ingest(items=changed, image_root=catalog.image_root)
        assert result.items_updated == 1
        assert store.items().set_index("item_id").loc["c", "description"] == "Now green."
        assert store.counts() == {"items": 3, "reviews": 3, "interactions": 3}


def test_failed_write_rolls_back(tmp_path, catalog, monkeypatch):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(catalog)
        before_items, before_counts = store.items(), store.counts()

        def boom(self, conn, frame, result):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(CatalogStore, "_write_interactions", boom)
        more_items = pd.concat(
            [catalog.items.assign(title=["X", "Y", "Z"]), pd.DataFrame({"item_id": ["n"], "title": ["New"]})]
        )
        more_inter = pd.DataFrame({"user_id": ["u5"], "item_id": ["n"], "timestamp": [1]})
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.ingest(items=more_items, interactions=more_inter, image_root=catalog.image_root)
        pd.testing.assert_frame_equal(store.items(), before_items)
        assert store.counts() == before_counts


def test_remove_items(tmp_path, catalog):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(catalog)
        with pytest.raises(UnknownIdError, match="'nope'"):
            store.remove_items(["a", "nope"])
        assert store.counts()["items"] == 3
        assert store.remove_items(["a"]) == 1
        assert store.counts() == {"items": 2, "reviews": 1, "interactions": 2}


def test_unknown_item_ids_in_interactions_are_reported(tmp_path, catalog):
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(items=catalog.items, image_root=catalog.image_root)
        inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "ghost"], "timestamp": [1, 2]})
        result = store.ingest(interactions=inter)
        assert result.interactions_added == 1
        assert [r.value for r in result.report.rows] == ["'ghost'"]


def test_read_table_formats(tmp_path):
    df = pd.DataFrame({"item_id": ["007", "8"], "title": ["Bond", "Eight"]})
    df.to_parquet(tmp_path / "items.parquet")
    df.to_parquet(tmp_path / "items.parquet.brotli", compression="brotli")
    (tmp_path / "items.tsv").write_text("item_id\ttitle\n007\tBond\n8\tEight\n")
    lines = "\n".join(json.dumps(r) for r in df.to_dict("records")) + "\n"
    (tmp_path / "items.jsonl").write_text(lines)
    with gzip.open(tmp_path / "items.jsonl.gz", "wt") as fh:
        fh.write(lines)
    for name in ("items.parquet", "items.parquet.brotli", "items.tsv", "items.jsonl", "items.jsonl.gz"):
        got = read_table(tmp_path / name)
        assert got["item_id"].tolist() == ["007", "8"], name
        assert got.attrs["source"] == str(tmp_path / name)

    (tmp_path / "bad.jsonl").write_text('{"item_id": "1"}\n{"item_id": \n')
    with pytest.raises(ValidationError, match=r"bad\.jsonl line 2"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError, match=r"x\.xlsx.*\.csv"):
        read_table(tmp_path / "x.xlsx")
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        read_table(tmp_path / "nothing.csv")


def test_load_frames_from_files(tmp_path):
    make_image(tmp_path / "p" / "1.png")
    (tmp_path / "items.csv").write_text("item_id,title,image_path\n1,One,p/1.png\n")
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp,rating\nu,1,5,\n")
    data = load_frames(tmp_path / "items.csv", interactions=tmp_path / "inter.csv")
    assert data.name == "items" and data.image_root == tmp_path.resolve()
    assert list(data.reviews.columns) == list(REVIEW_COLUMNS)
    with CatalogStore(tmp_path / "db.sqlite") as store:
        result = store.ingest(data)
        assert not result.report, result.report.format()
        assert store.items()["image_path"][0] == str((tmp_path / "p" / "1.png").resolve())
        assert np.isnan(store.interactions()["rating"][0])


def test_100k_interactions_in_one_ingest(tmp_path):
    """Bulk path: 100k text-typed interactions validated and stored in one call (speed is
    measured in benchmarks, never asserted here)."""
    n = 100_000
    rng = np.random.default_rng(0)
    inter = pd.DataFrame(
        {
            "user_id": rng.integers(0, 2000, n).astype(str).astype(object),
            "item_id": rng.integers(0, 500, n).astype(str).astype(object),
            "timestamp": np.arange(n).astype(str).astype(object),
            "rating": rng.integers(1, 6, n).astype(str).astype(object),
        }
    )
    items = pd.DataFrame({"item_id": np.arange(500), "title": [f"t{i}" for i in range(500)]})
    with CatalogStore(tmp_path / "db.sqlite") as store:
        store.ingest(items=items)
        result = store.ingest(interactions=inter)
        assert result.interactions_added == n and not result.report
        assert store.counts()["interactions"] == n


def test_movielens_loader(shared_data, tmp_path):
    path = shared_data / "movielens-posters"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    data = load_movielens_posters(path)
    assert data.name == "movielens"
    assert data.items["item_id"].is_unique and len(data.items) == 1682
    assert data.reviews.empty and list(data.reviews.columns) == list(REVIEW_COLUMNS)
    first = data.items.iloc[0]
    assert first["item_id"] == "1" and first["title"] == "Toy Story (1995)"
    assert first["attributes"]["year"] == "1995"
    assert "Comedy" in first["attributes"]["genres"]
    assert first["image_path"].endswith("posters/1.jpg")
    assert (data.interactions["event"] == "rating").all()
    with CatalogStore(tmp_path / "ml.db") as store:
        result = store.ingest(data)
        assert result.items_added == 1682
        assert result.interactions_added + result.report.n_bad_rows == len(data.interactions)
    with pytest.raises(FileNotFoundError, match="items.csv"):
        load_movielens_posters(tmp_path)


def test_clothing_loader(shared_data):
    path = shared_data / "clothing-reviews"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    data = load_clothing_reviews(path)
    assert data.name == "clothing-reviews"
    dropped = data.reviews.attrs["n_dropped_without_text"]
    assert len(data.reviews) + dropped == 23486
    assert data.items["item_id"].is_unique
    reviews, rep = validate_reviews(data.reviews, known_item_ids=set(data.items["item_id"]))
    assert not rep and len(reviews) == len(data.reviews)
