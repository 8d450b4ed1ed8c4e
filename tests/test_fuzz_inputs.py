"""Bad input everywhere (issue 6): property-based tests of every catalog loader and vector input.

Every malformed input must end in one of two ways: a clear error (``ValidationError`` /
``ValueError`` / ``TypeError`` naming the file, row or column and the fix) or a reported
bad row. Either way nothing already stored changes: each store test starts from a copy of
a store holding the sample catalog and compares the full tables before and after.

Regression tests for the bugs these tests found are named ``test_bug_*``.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from recgen.catalog import CatalogStore, read_table
from recgen.datasets import load_clothing_reviews, load_movielens_posters
from recgen.catalog.data import INTERACTION_COLUMNS, ITEM_COLUMNS, REVIEW_COLUMNS
from recgen.catalog.schema import (
    MAX_IMAGE_PIXELS,
    RATING_RANGE,
    TIMESTAMP_RANGE,
    validate_interactions,
    validate_items,
    validate_reviews,
)
from recgen.encoders.image import load_image
from recgen.errors import ValidationError

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_SMALL = settings(FUZZ, max_examples=15)

# ------------------------------------------------------------------------------ helpers


def png_header(width: int, height: int, *, mode: int = 2) -> bytes:
    """A PNG declaring ``width`` x ``height`` pixels whose data is one empty IDAT: no memory allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def image_bytes(fmt: str, size=(24, 16)) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", size, (200, 40, 10))
    img.putpixel((1, 1), (0, 255, 0))
    img.save(buf, format=fmt)
    return buf.getvalue()


IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}
VALID_IMAGES = {fmt: image_bytes(fmt) for fmt in IMAGE_FORMATS}


def snapshot(store: CatalogStore) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return store.items(), store.reviews(), store.interactions()


def assert_same_tables(before, after) -> None:
    for b, a, name in zip(before, after, ("items", "reviews", "interactions")):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), obj=name)


def obj_frame(columns: dict[str, list]) -> pd.DataFrame:
    """A frame of object columns (pandas' Arrow strings cannot even hold lone surrogates)."""
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


@pytest.fixture(scope="module")
def base_store(sample, tmp_path_factory) -> tuple[Path, tuple]:
    """A closed SQLite file holding the sample catalog, and its tables."""
    path = tmp_path_factory.mktemp("fuzz-store") / "base.db"
    with CatalogStore(path) as store:
        store.ingest(sample)
        tables = snapshot(store)
    return path, tables


class StoreCopies:
    """Fresh copies of the base store, one per hypothesis example."""

    def __init__(self, base: Path, tables: tuple, folder: Path):
        self.base, self.tables, self.folder, self.n = base, tables, folder, 0

    def new(self) -> CatalogStore:
        self.n += 1
        path = self.folder / f"copy{self.n}.db"
        shutil.copyfile(self.base, path)
        return CatalogStore(path)


@pytest.fixture
def stores(base_store, tmp_path) -> StoreCopies:
    return StoreCopies(*base_store, tmp_path)


def merged_expectation(before, clean_items, clean_reviews, clean_inter):
    """What the store must hold after storing exactly the clean rows on top of ``before``."""
    items, reviews, inter = (t.copy() for t in before)
    if clean_items is not None and len(clean_items):
        keep = items[~items["item_id"].isin(clean_items["item_id"])]
        new = clean_items[list(ITEM_COLUMNS)].copy()
        items = pd.concat([keep[list(ITEM_COLUMNS)], new], ignore_index=True)
    else:
        items = items[list(ITEM_COLUMNS)]
    items = items.sort_values("item_id", ignore_index=True)
    if clean_reviews is not None and len(clean_reviews):
        reviews = pd.concat([reviews, clean_reviews[list(REVIEW_COLUMNS)]], ignore_index=True)
    if clean_inter is not None and len(clean_inter):
        key = ["user_id", "item_id", "timestamp", "event"]
        inter = pd.concat([inter, clean_inter[list(INTERACTION_COLUMNS)]], ignore_index=True)
        inter = inter.drop_duplicates(key, keep="first")
    return items, reviews, inter


def canon(frame: pd.DataFrame, key: list[str]) -> list[tuple]:
    """Rows as sorted tuples, NaN made comparable, attributes dicts as sorted JSON."""
    rows = []
    for rec in frame.to_dict("records"):
        row = []
        for k in frame.columns:
            v = rec[k]
            if isinstance(v, dict):
                v = json.dumps(v, sort_keys=True)
            elif isinstance(v, float) and np.isnan(v):
                v = "NaN"
            elif isinstance(v, (np.integer, np.floating)):
                v = v.item()
            row.append(v)
        rows.append(tuple(row))
    return sorted(rows, key=repr)


def assert_report_is_clear(report, n_rows: dict[str, int], columns: dict[str, set[str]]) -> None:
    """Every bad row names its source, a row inside the input, a real column and a reason."""
    for bad in report.rows:
        assert bad.reason and isinstance(bad.reason, str)
        kind = next(k for k in n_rows if k in bad.source)
        assert bad.row is not None and 1 <= bad.row <= n_rows[kind], bad
        assert bad.column in columns[kind], bad
        text = str(bad)
        assert f"row {bad.row}" in text and repr(bad.column) in text


# ------------------------------------------------------------------------------ strategies

SPECIAL_TEXT = [
    "", "   ", "\ud800", "x\udcff", "a\x00b", "nan", "NaN", "inf", "-inf", "1e400", "-0", "007", "42.0",
    "2021-01-01", "9999-12-31T23:59:59Z", "0001-01-01", "not a date", "{}", '{"a": [1, {"b": null}]}', "[1]",
    '{"a": NaN}', '{"a": 1e999}', '{"a": "\\ud800"}', "[" * 3000 + "]" * 3000, "é" * 50, "\u202e\ufeff",
]
ENCODABLE_TEXT = [t for t in SPECIAL_TEXT if not re.search("[\ud800-\udfff]", t)]
huge_text = st.integers(min_value=10_000, max_value=200_000).map(lambda n: "y" * n)
scalars = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(SPECIAL_TEXT),
    huge_text,
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**70, 2**1100, -(2**1100), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=8),
    st.sampled_from([np.float32("nan"), np.float64("inf"), np.int64(7), pd.NaT, pd.NA, np.nan]),
    st.datetimes().map(pd.Timestamp),
)
cells = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), scalars, max_size=3),
)
item_ids = st.one_of(cells, st.sampled_from([f"i{k:04d}" for k in range(3)])).filter(
    lambda v: not (isinstance(v, str) and v.startswith("good-"))
)


def clean_text(**kwargs) -> st.SearchStrategy[str]:
    """Text recgen must accept: anything but NUL and lone surrogates.

    Surrogates are excluded explicitly: hypothesis' default excludes them only while no other
    filter is given, and a run produced "\ud800" here as a "good" title.
    """
    return st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), **kwargs)


@st.composite
def good_item(draw, k: int) -> dict:
    return {
        "item_id": f"good-{k}",
        "title": draw(clean_text(min_size=1, max_size=30).filter(str.strip)),
        "description": draw(clean_text(max_size=50)),
        "attributes": draw(st.dictionaries(clean_text(min_size=1, max_size=5), clean_text(max_size=10), max_size=2)),
        "image_path": None,
    }


@st.composite
def items_frames(draw) -> tuple[pd.DataFrame, list[int]]:
    """(items frame, 0-based positions of rows that are valid by construction)."""
    n = draw(st.integers(0, 7))
    rows, good = [], []
    for k in range(n):
        if draw(st.booleans()):
            rows.append(draw(good_item(k)))
            good.append(k)
        else:
            rows.append({"item_id": draw(item_ids), "title": draw(cells), "description": draw(cells),
                         "attributes": draw(cells), "image_path": draw(st.one_of(st.none(), cells))})
    cols = {c: [r[c] for r in rows] for c in ITEM_COLUMNS}
    return obj_frame(cols), good


@st.composite
def reviews_frames(draw, known: list[str]) -> tuple[pd.DataFrame, list[int]]:
    n = draw(st.integers(0, 7))
    rows, good = [], []
    for k in range(n):
        if draw(st.booleans()):
            rows.append({"item_id": draw(st.sampled_from(known)), "user_id": f"good-user-{k}",
                         "rating": draw(st.floats(*RATING_RANGE)), "text": f"good review {k}",
                         "timestamp": draw(st.integers(0, 2_000_000_000))})
            good.append(k)
        else:
            rows.append({"item_id": draw(st.one_of(item_ids, st.sampled_from(known))), "user_id": draw(cells),
                         "rating": draw(cells), "text": draw(cells), "timestamp": draw(cells)})
    return obj_frame({c: [r[c] for r in rows] for c in REVIEW_COLUMNS}), good


@st.composite
def interactions_frames(draw, known: list[str]) -> tuple[pd.DataFrame, list[int]]:
    n = draw(st.integers(0, 7))
    rows, good = [], []
    for k in range(n):
        if draw(st.booleans()):
            rows.append({"user_id": f"good-user-{k}", "item_id": draw(st.sampled_from(known)),
                         "timestamp": draw(st.integers(*TIMESTAMP_RANGE)), "rating": draw(st.floats(0, 5)),
                         "event": "click"})
            good.append(k)
        else:
            rows.append({"user_id": draw(cells), "item_id": draw(st.one_of(item_ids, st.sampled_from(known))),
                         "timestamp": draw(cells), "rating": draw(cells), "event": draw(cells)})
    return obj_frame({c: [r[c] for r in rows] for c in INTERACTION_COLUMNS}), good


KNOWN = ["i0000", "i0001", "i0002"]


# ------------------------------------------------------------------------------ validation


def _check_clean_text(values) -> None:
    for v in values:
        if v is None:
            continue
        assert isinstance(v, str)
        v.encode("utf-8")  # no lone surrogates
        assert "\x00" not in v


@FUZZ
@given(data=items_frames())
def test_validate_items_accounts_for_every_row(data):
    frame, good = data
    clean, rep = validate_items(frame, source="items.csv", check_images=False)
    assert rep.n_checked == len(frame)
    assert rep.n_bad_rows + len(clean) == len(frame)  # nothing dropped silently
    assert_report_is_clear(rep, {"items": len(frame)}, {"items": set(ITEM_COLUMNS)})
    assert {f"good-{k}" for k in good} <= set(clean["item_id"])
    assert clean["item_id"].is_unique and all(clean["item_id"]) and all(clean["title"])
    for col in ("item_id", "title", "description"):
        _check_clean_text(clean[col])
    for attrs in clean["attributes"]:
        assert isinstance(attrs, dict)
        json.dumps(attrs, ensure_ascii=False).encode("utf-8")


@FUZZ
@given(data=reviews_frames(KNOWN))
def test_validate_reviews_accounts_for_every_row(data):
    frame, good = data
    clean, rep = validate_reviews(frame, source="reviews.csv", known_item_ids=set(KNOWN))
    assert rep.n_bad_rows + len(clean) == len(frame)
    assert_report_is_clear(rep, {"reviews": len(frame)}, {"reviews": set(REVIEW_COLUMNS)})
    assert {f"good review {k}" for k in good} <= set(clean["text"])
    assert np.isfinite(clean["rating"]).all()
    assert ((clean["rating"] >= RATING_RANGE[0]) & (clean["rating"] <= RATING_RANGE[1])).all()
    assert clean["timestamp"].dtype == np.int64
    assert clean["timestamp"].between(*TIMESTAMP_RANGE).all()
    for col in ("item_id", "user_id", "text"):
        _check_clean_text(clean[col])


@FUZZ
@given(data=interactions_frames(KNOWN))
def test_validate_interactions_accounts_for_every_row(data):
    frame, good = data
    clean, rep = validate_interactions(frame, source="interactions.csv", known_item_ids=set(KNOWN))
    assert rep.n_bad_rows + len(clean) == len(frame)
    assert_report_is_clear(rep, {"interactions": len(frame)}, {"interactions": set(INTERACTION_COLUMNS)})
    assert {f"good-user-{k}" for k in good} <= set(clean["user_id"])
    assert not np.isinf(clean["rating"]).any()
    assert clean["timestamp"].between(*TIMESTAMP_RANGE).all()
    for col in ("user_id", "item_id", "event"):
        _check_clean_text(clean[col])


# ------------------------------------------------------------------------------ store


@FUZZ
@given(data=st.data())
def test_ingest_stores_exactly_the_valid_rows_or_nothing(stores, data):
    """Random mixes of good and bad rows into a store that holds the sample catalog."""
    before = stores.tables
    known = list(before[0]["item_id"][:5])
    items, good_items = data.draw(items_frames(), label="items")
    reviews, good_reviews = data.draw(reviews_frames(known), label="reviews")
    inter, good_inter = data.draw(interactions_frames(known), label="interactions")
    items.attrs["source"], reviews.attrs["source"], inter.attrs["source"] = "items.x", "reviews.x", "interactions.x"
    on_error = data.draw(st.sampled_from(["report", "raise"]), label="on_error")
    # the reference: what validation accepts, against the items stored plus the new ones
    clean_items, rep = validate_items(items, check_images=False)
    known_ids = set(before[0]["item_id"]) | set(clean_items["item_id"])
    clean_reviews, rep_r = validate_reviews(reviews, known_item_ids=known_ids)
    clean_inter, rep_i = validate_interactions(inter, known_item_ids=known_ids)
    n_bad = rep.n_bad_rows + rep_r.n_bad_rows + rep_i.n_bad_rows

    with stores.new() as store:
        if on_error == "raise" and n_bad:
            with pytest.raises(ValidationError) as err:
                store.ingest(items=items, reviews=reviews, interactions=inter, on_error="raise", check_images=False)
            assert err.value.report.n_bad_rows == n_bad
            assert_same_tables(before, snapshot(store))  # nothing changed
            return
        result = store.ingest(items=items, reviews=reviews, interactions=inter, on_error=on_error,
                              check_images=False)
        after = snapshot(store)
    assert result.report.n_bad_rows == n_bad
    assert_report_is_clear(
        result.report,
        {"items": len(items), "reviews": len(reviews), "interactions": len(inter)},
        {"items": set(ITEM_COLUMNS), "reviews": set(REVIEW_COLUMNS), "interactions": set(INTERACTION_COLUMNS)},
    )
    # the rows valid by construction are stored
    assert {f"good-{k}" for k in good_items} <= set(after[0]["item_id"])
    assert {f"good review {k}" for k in good_reviews} <= set(after[1]["text"])
    assert {f"good-user-{k}" for k in good_inter} <= set(after[2]["user_id"])
    # and nothing else changed: before + exactly the clean rows
    exp_items, exp_reviews, exp_inter = merged_expectation(before, clean_items, clean_reviews, clean_inter)
    assert canon(after[0][list(ITEM_COLUMNS)], []) == canon(exp_items, [])
    assert canon(after[1], []) == canon(exp_reviews.drop_duplicates(), [])
    assert canon(after[2], []) == canon(exp_inter, [])
    untouched = before[0][~before[0]["item_id"].isin(clean_items["item_id"])]
    merged = untouched.merge(after[0], on="item_id", suffixes=("", "_after"))
    assert (merged["content_hash"] == merged["content_hash_after"]).all()


# ------------------------------------------------------------------------------ files

TABLE_SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".csv.gz", ".jsonl.gz"]
GOOD_CSV = "item_id,title,description\n1,One,first\n2,\"Two, too\",second\n3,Three,\n"


def _ingest_file_or_clear_error(stores: StoreCopies, path: Path, what: str) -> None:
    """read_table + ingest: a frame (bad rows reported) or an error naming the file; store never corrupted."""
    try:
        frame = read_table(path)
    except (ValidationError, ValueError) as exc:
        assert str(path) in str(exc), exc
        return
    assert frame.attrs["source"] == str(path)
    with stores.new() as store:
        try:
            result = store.ingest(**{what: path}, check_images=False)
        except ValidationError as exc:  # a required column is missing: the file is named
            assert str(path) in str(exc) and "column" in str(exc)
            assert_same_tables(stores.tables, snapshot(store))
            return
        after = snapshot(store)
    for bad in result.report.rows:
        assert bad.source == str(path) and bad.row is not None and bad.column is not None
    # stored rows already there are unchanged (new valid rows may be added)
    if what == "items":
        old = stores.tables[0]
        kept = old.merge(after[0], on="item_id", suffixes=("", "_after"))
        fresh_ids = set(after[0]["item_id"]) - set(old["item_id"])
        changed = kept[kept["content_hash"] != kept["content_hash_after"]]["item_id"]
        assert len(after[0]) == len(old) + len(fresh_ids)
        assert len(changed) <= len(frame)  # only ids present in the file can change
    else:
        assert len(after[0]) == len(stores.tables[0])
    assert len(after[1]) >= len(stores.tables[1]) and len(after[2]) >= len(stores.tables[2])


def _write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@FUZZ
@given(suffix=st.sampled_from(TABLE_SUFFIXES), data=st.binary(max_size=300))
def test_random_bytes_as_a_table_file(stores, tmp_path_factory, suffix, data):
    path = _write(tmp_path_factory.mktemp("bytes") / f"items{suffix}", data)
    _ingest_file_or_clear_error(stores, path, "items")


@st.composite
def mutated_csv(draw) -> bytes:
    """The good CSV, re-encoded and then damaged: bytes replaced, inserted, deleted or cut."""
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "utf-16-le", "latin-1", "cp1252"]))
    text = GOOD_CSV.replace("One", draw(st.sampled_from(["One", "Caf\u00e9", "\u65e5\u672c", "x" * 5000])))
    data = bytearray(text.encode(encoding, errors="replace"))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        byte = draw(st.sampled_from([0, 0xFF, 0xFE, 0x22, 0x2C, 0x0A, 0x0D, 0x09, 0x80, 0xC3, 0x7B]))
        if op == "replace" and data:
            data[pos] = byte
        elif op == "insert":
            data.insert(pos, byte)
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@FUZZ
@given(suffix=st.sampled_from([".csv", ".csv.gz"]), data=mutated_csv())
def test_damaged_csv_files(stores, tmp_path_factory, suffix, data):
    path = _write(tmp_path_factory.mktemp("csv") / f"items{suffix}", data)
    _ingest_file_or_clear_error(stores, path, "items")


@st.composite
def mutated_jsonl(draw) -> bytes:
    recs = [{"item_id": "1", "title": "One"}, {"item_id": 2, "title": "Two", "attributes": {"a": [1]}}]
    extra = draw(st.lists(st.dictionaries(st.sampled_from(["item_id", "title", "x"]), cells, max_size=3), max_size=2))
    lines = [json.dumps(r, default=str) for r in recs + extra]
    data = bytearray("\n".join(lines).encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x22, 0x7B, 0x7D, 0x0A, 0x5B]))
    return bytes(data)


@FUZZ_SMALL
@given(suffix=st.sampled_from([".jsonl", ".json", ".jsonl.gz"]), data=mutated_jsonl())
def test_damaged_json_lines_files(stores, tmp_path_factory, suffix, data):
    path = _write(tmp_path_factory.mktemp("jsonl") / f"items{suffix}", data)
    _ingest_file_or_clear_error(stores, path, "items")


@FUZZ_SMALL
@given(cut=st.floats(0, 1, exclude_max=True), flips=st.lists(st.integers(0, 10_000), max_size=3))
def test_truncated_or_corrupt_parquet(stores, tmp_path_factory, cut, flips):
    folder = tmp_path_factory.mktemp("pq")
    pd.DataFrame({"item_id": ["1", "2"], "title": ["One", "Two"]}).to_parquet(folder / "ok.parquet")
    data = bytearray((folder / "ok.parquet").read_bytes())
    for f in flips:
        data[f % len(data)] ^= 0xFF
    path = folder / "items.parquet"
    path.write_bytes(bytes(data[: max(int(len(data) * cut), 0)] if cut else data))
    _ingest_file_or_clear_error(stores, path, "items")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".csv.gz"])
def test_zero_byte_table_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"items{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ValidationError, match="empty|not a readable") as err:
        read_table(path)
    assert str(path) in str(err.value)


def test_zero_byte_json_lines_file_holds_no_rows(stores, tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_bytes(b"")
    with stores.new() as store:
        result = store.ingest(reviews=path)
        assert not result.report and result.reviews_added == 0
        assert_same_tables(stores.tables, snapshot(store))


# ------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig", "utf-16-be"])
def test_bug_utf16_and_utf32_files_with_a_bom_are_read(tmp_path, encoding):
    """Bug: a UTF-16 file (Excel's "Unicode text") crashed read_table with UnicodeEncodeError."""
    text = "item_id\ttitle\n1\tCaf\u00e9\n2\t\u65e5\u672c\n"
    path = tmp_path / "items.tsv"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    df = read_table(path)
    assert df["title"].tolist() == ["Caf\u00e9", "\u65e5\u672c"]
    jl = tmp_path / "items.jsonl"
    jl.write_bytes('{"item_id": "1", "title": "Caf\u00e9"}\n'.encode(encoding if encoding != "utf-16-be" else "utf-16"))
    assert read_table(jl)["title"].tolist() == ["Caf\u00e9"]


def test_bug_utf16_without_bom_names_the_file_and_the_fix(tmp_path):
    """Bug: a BOM-less UTF-16 file was read as columns 'i\\x00t\\x00e\\x00m...' and failed obscurely."""
    path = tmp_path / "items.csv"
    path.write_bytes("item_id,title\n1,One\n".encode("utf-16-le"))
    with pytest.raises(ValidationError, match=r"items\.csv: contains NUL bytes.*UTF-16.*save it as UTF-8"):
        read_table(path)


def test_non_utf8_bytes_are_reported_per_row_and_column(stores, tmp_path):
    path = tmp_path / "reviews.csv"
    a, b = stores.tables[0]["item_id"][:2]
    path.write_bytes(f"item_id,rating,text\n{a},4,fine\n{b},5,caf\xe9 latte\n{a},3,ok\n".encode("latin-1"))
    with stores.new() as store:
        result = store.ingest(reviews=path)
        after = snapshot(store)
    assert [(r.source, r.row, r.column) for r in result.report.rows] == [(str(path), 2, "text")]
    assert "not valid UTF-8" in result.report.rows[0].reason and "save the file as UTF-8" in result.report.rows[0].reason
    assert result.reviews_added == 2 and len(after[1]) == len(stores.tables[1]) + 2


# ------------------------------------------------------------------------------ regressions: rows


def test_bug_lone_surrogate_crashed_the_whole_ingest(stores):
    """Bug: '\\ud800' (from a JSON escape or a frame) passed validation and failed the SQL write."""
    items = obj_frame({"item_id": ["s1", "s2", "s3"], "title": ["bad \ud800", "fine", "ok"],
                       "attributes": [None, {"k\udfff": "v"}, {"k": ["\ud83d"]}]})
    with stores.new() as store:
        result = store.ingest(items=items)
        after = snapshot(store)
    assert {(r.row, r.column) for r in result.report.rows} == {(1, "title"), (2, "attributes"), (3, "attributes")}
    assert all("surrogate" in r.reason for r in result.report.rows)
    assert len(after[0]) == len(stores.tables[0])
    path = Path(stores.folder) / "items.jsonl"
    path.write_text('{"item_id": "j1", "title": "\\ud800"}\n{"item_id": "j2", "title": "fine"}\n')
    with stores.new() as store:
        result = store.ingest(items=path)
        assert result.items_added == 1 and result.report.rows[0].row == 1


def test_bug_nul_characters_are_rejected_per_row(stores):
    """Bug: NUL characters were stored (SQLite takes them; PostgreSQL fails the whole transaction)."""
    items = obj_frame({"item_id": ["n1", "n\x002"], "title": ["a\x00b", "t"]})
    with stores.new() as store:
        result = store.ingest(items=items)
        assert_same_tables(stores.tables, snapshot(store))
    assert {(r.row, r.column) for r in result.report.rows} == {(1, "title"), (2, "item_id")}
    assert all("NUL" in r.reason for r in result.report.rows)


def test_bug_ratings_beyond_float_range_raised_overflowerror():
    """Bug: an int rating > 1.8e308 (e.g. from JSON) raised OverflowError out of validation."""
    reviews = obj_frame({"item_id": ["a", "a", "a"], "rating": [2**1100, -(10**400), 4], "text": ["t", "t", "t"]})
    clean, rep = validate_reviews(reviews)
    assert clean["rating"].tolist() == [4.0]
    assert [(r.row, r.column) for r in rep.rows] == [(1, "rating"), (2, "rating")]


@pytest.mark.parametrize("value", [1e300, 2**70, "1e30", 9.3e18, -1e19, 1_700_000_000_000_000, np.uint64(2**63 + 5)])
def test_bug_out_of_range_timestamps_wrapped_to_int64_min(value):
    """Bug: timestamps beyond int64 were stored as -9223372036854775808 without a report."""
    inter = obj_frame({"user_id": ["u", "v"], "item_id": ["a", "a"], "timestamp": [value, 5]})
    clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == [5]
    assert rep.rows[0].row == 1 and rep.rows[0].column == "timestamp"
    assert "out of range" in rep.rows[0].reason and "milliseconds" in rep.rows[0].reason


def test_bug_uint64_timestamp_column_wrapped():
    inter = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["a", "a"],
                          "timestamp": pd.Series([2**63 + 5, 1], dtype="uint64")})
    clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == [1] and rep.rows[0].row == 1


def test_bug_dates_outside_pandas_nanosecond_range_crashed():
    """Bug: '9999-12-31' and '0001-01-01' raised OutOfBoundsDatetime out of validation."""
    from datetime import datetime, timezone

    inter = obj_frame({"user_id": ["u"] * 4, "item_id": ["a"] * 4,
                       "timestamp": ["9999-12-31", "0001-01-01T00:00:00Z", datetime(9999, 1, 1), "2262-04-12"]})
    clean, rep = validate_interactions(inter)
    assert not rep, rep.format()
    expected = [datetime(9999, 12, 31, tzinfo=timezone.utc), datetime(1, 1, 1, tzinfo=timezone.utc),
                datetime(9999, 1, 1, tzinfo=timezone.utc), datetime(2262, 4, 12, tzinfo=timezone.utc)]
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert clean["timestamp"].tolist() == [int((d - epoch).total_seconds()) for d in expected]


def test_bug_nullable_int_timestamps_with_missing_values_crashed():
    """Bug: an Int64 (nullable) timestamp column with a missing value raised ValueError."""
    inter = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["a", "a"],
                          "timestamp": pd.Series([10, None], dtype="Int64")})
    clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == [10]
    assert (rep.rows[0].row, rep.rows[0].column, rep.rows[0].reason) == (2, "timestamp", "missing timestamp")


def test_duplicate_item_ids_keep_the_first_valid_row(stores):
    items = obj_frame({"item_id": ["d1", "d1", " d1 ", 7, 7.0], "title": [None, "first valid", "dup", "seven", "dup"]})
    with stores.new() as store:
        result = store.ingest(items=items)
        stored = store.items().set_index("item_id")
    assert stored.loc["d1", "title"] == "first valid" and stored.loc["7", "title"] == "seven"
    dups = [r for r in result.report.rows if "duplicate" in r.reason]
    assert [(r.row, r.column) for r in dups] == [(3, "item_id"), (5, "item_id")]
    assert "first seen in row 2" in dups[0].reason


# ------------------------------------------------------------------------------ regressions: files


def test_bug_extra_fields_in_a_csv_line_shifted_the_values(tmp_path):
    """Bug: '1,One,x,y' under a 2-column header made pandas use columns as an index: item 'x' titled 'y'."""
    path = tmp_path / "items.csv"
    path.write_text("item_id,title\n1,One,x,y\n2,Two\n")
    with pytest.raises(ValidationError, match=r"items\.csv: malformed CSV \(line 2 has 4 fields, the header 2\)"):
        read_table(path)
    path.write_text("item_id,title\n1,One\n2,Two,x\n")
    with pytest.raises(ValidationError, match=r"items\.csv: malformed CSV .*line 3.*must be quoted"):
        read_table(path)


def test_bug_parser_errors_did_not_name_the_file(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('item_id,title\n1,"unterminated\n')
    with pytest.raises(ValidationError, match=r"items\.csv: malformed CSV"):
        read_table(path)


def test_bug_duplicate_header_names_were_renamed_silently(tmp_path):
    """Bug: 'title,title' became columns title and title.1; the second title was ignored."""
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,title\n1,One,Uno\n")
    with pytest.raises(ValidationError, match=r"names column\(s\) \['title'\] more than once"):
        read_table(path)
    path.write_text("item_id,title,v.1\n1,One,x\n")  # a real column named like a renamed copy is fine
    assert list(read_table(path).columns) == ["item_id", "title", "v.1"]


def test_bug_duplicate_json_keys_kept_the_last_silently(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "1", "title": "A"}\n{"item_id": "2", "item_id": "3", "title": "B"}\n')
    with pytest.raises(ValidationError, match=r"items\.jsonl line 2: key 'item_id' appears twice"):
        read_table(path)


def test_bug_deeply_nested_json_raised_recursionerror(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "1", "title": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ValidationError, match=r"items\.jsonl line 1: JSON nested too deeply"):
        read_table(path)
    clean, rep = validate_items(obj_frame({"item_id": ["1"], "title": ["t"], "attributes": ["[" * 100_000]}))
    assert clean.empty and rep.rows[0].column == "attributes"


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(GOOD_CSV.encode(), mtime=0)[:30]],
                         ids=["not-gzip", "truncated-gzip"])
def test_bug_corrupt_gzip_raised_raw_eoferror_or_badgzipfile(tmp_path, data):
    for name in ("items.csv.gz", "items.jsonl.gz"):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValidationError, match="not a readable gzip file.*re-compress") as err:
            read_table(path)
        assert str(path) in str(err.value)


def test_bug_corrupt_parquet_raised_arrowinvalid(tmp_path):
    path = tmp_path / "items.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValidationError, match=r"items\.parquet: not a readable Parquet file"):
        read_table(path)


# ------------------------------------------------------------------------------ images


@st.composite
def damaged_images(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(VALID_IMAGES)))
    data = bytearray(VALID_IMAGES[fmt])
    how = draw(st.sampled_from(["truncate", "flip", "garbage-after-magic", "zero", "intact"]))
    if how == "truncate":
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif how == "flip":
        for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=6)):
            data[pos] = draw(st.integers(0, 255))
    elif how == "garbage-after-magic":
        data = data[:8] + bytearray(draw(st.binary(min_size=1, max_size=200)))
    elif how == "zero":
        data = bytearray()
    return fmt, bytes(data)


@pytest.mark.filterwarnings("ignore:(Corrupt EXIF|Truncated File Read):UserWarning")  # Pillow on damaged TIFFs
@FUZZ
@given(image=damaged_images(), truncated_flag=st.booleans())
def test_damaged_images_are_reported_per_row_never_crash(stores, tmp_path_factory, image, truncated_flag):
    fmt, data = image
    folder = tmp_path_factory.mktemp("img")
    path = folder / f"x{IMAGE_FORMATS[fmt]}"
    path.write_bytes(data)
    (folder / "ok.png").write_bytes(VALID_IMAGES["PNG"])
    items = obj_frame({"item_id": ["img-bad", "img-ok"], "title": ["X", "OK"], "image_path": [path.name, "ok.png"]})
    old_flag, old_cap = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated_flag  # a user's setting must not let truncated files in
    try:
        with stores.new() as store:
            result = store.ingest(items=items, image_root=folder)
            after = snapshot(store)
        try:
            img = load_image(path)
            decoded = True
            assert img.mode == "RGB" and 0 < img.size[0] * img.size[1] <= MAX_IMAGE_PIXELS
        except ValueError as exc:
            decoded = False
            assert str(path) in str(exc)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is truncated_flag and Image.MAX_IMAGE_PIXELS == old_cap
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old_flag
    stored = set(after[0]["item_id"]) - set(stores.tables[0]["item_id"])
    assert "img-ok" in stored
    if "img-bad" in stored:  # accepted: it must really decode, completely
        assert decoded and not result.report
    else:
        (bad,) = result.report.rows
        assert (bad.row, bad.column) == (1, "image_path") and bad.reason.startswith("image")
        assert not decoded
    assert len(after[0]) == len(stores.tables[0]) + len(stored)


@pytest.mark.parametrize("size", [(100_000, 100_000), (1, MAX_IMAGE_PIXELS + 1), (2**31 - 1, 2**31 - 1)])
def test_decompression_bombs_are_refused_from_the_header(stores, tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(*size))
    items = obj_frame({"item_id": ["bomb"], "title": ["B"], "image_path": [str(path)]})
    old_cap = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # even with Pillow's own guard switched off by the user
    try:
        with stores.new() as store:
            result = store.ingest(items=items)
            assert_same_tables(stores.tables, snapshot(store))
        with pytest.raises(ValueError, match=r"bomb\.png.*over the cap.*decompression bomb.*downscale"):
            load_image(path)
        with pytest.raises(ValueError, match=r"<\d+ bytes>.*over the cap"):
            load_image(path.read_bytes())
        assert Image.MAX_IMAGE_PIXELS is None
    finally:
        Image.MAX_IMAGE_PIXELS = old_cap
    (bad,) = result.report.rows
    assert bad.column == "image_path" and "decompression bomb" in bad.reason and f"{size[0]}x{size[1]}" in bad.reason


def test_bug_load_image_decoded_images_between_the_cap_and_twice_the_cap(tmp_path):
    """Bug: load_image only warned (Pillow's DecompressionBombWarning) for 50-100 MP images and decoded them."""
    path = tmp_path / "big.png"
    Image.new("1", (8000, 7000)).save(path)  # 56 MP, a small file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"big\.png.*8000x7000.*over the cap"):
            load_image(path)


def test_bug_load_image_changed_pillows_global_pixel_cap(tmp_path):
    """Bug: load_image set PIL.Image.MAX_IMAGE_PIXELS for the whole process."""
    path = tmp_path / "ok.png"
    path.write_bytes(VALID_IMAGES["PNG"])
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 123_456_789
    try:
        assert load_image(path).size == (24, 16)
        assert Image.MAX_IMAGE_PIXELS == 123_456_789
    finally:
        Image.MAX_IMAGE_PIXELS = old


def test_bug_nul_in_image_path_raised_valueerror(tmp_path):
    """Bug: an image_path with a NUL character raised 'embedded null byte' out of validation."""
    items = obj_frame({"item_id": ["a", "b"], "title": ["A", "B"], "image_path": ["x\x00.png", "nothing.png"]})
    for check in (True, False):
        clean, rep = validate_items(items, check_images=check, image_root=tmp_path)
        assert rep.rows[0].row == 1 and rep.rows[0].column == "image_path" and "NUL" in rep.rows[0].reason
    with pytest.raises(ValueError, match="NUL"):
        load_image("x\x00.png")


@pytest.mark.parametrize("case", ["zero-bytes", "directory", "missing", "text-file", "half-png", "half-jpeg"])
def test_bad_image_files_name_the_problem(tmp_path, case):
    path = {"directory": tmp_path / "dir.png"}.get(case, tmp_path / "img.bin")
    if case == "zero-bytes":
        path.write_bytes(b"")
    elif case == "directory":
        path.mkdir()
    elif case == "text-file":
        path.write_text("hello, not an image")
    elif case.startswith("half"):
        data = VALID_IMAGES["PNG" if case == "half-png" else "JPEG"]
        path.write_bytes(data[: len(data) // 2])
    expected = {"zero-bytes": "empty (0 bytes)", "directory": "not a file", "missing": "not found",
                "text-file": "format not recognised", "half-png": "truncated", "half-jpeg": "truncated"}[case]
    _, rep = validate_items(obj_frame({"item_id": ["a"], "title": ["A"], "image_path": [str(path)]}))
    assert rep.rows[0].column == "image_path" and expected in rep.rows[0].reason, rep.rows[0].reason
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_image(path)
    with pytest.raises(TypeError, match="source must be"):
        load_image(12345)


# ------------------------------------------------------------------------------ loaders of public datasets

ML_ITEMS_HEADER = ["movie_id", "title", "Action", "Comedy", "year", "overview", "original_language", "runtime"]


@FUZZ_SMALL
@given(rows=st.lists(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL_TEXT[:20])),
                              min_size=8, max_size=8), max_size=5),
       ratings=st.lists(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(["1", "5", "1e400", "-1", "x", ""])),
                                 min_size=4, max_size=4), max_size=5))
def test_movielens_loader_with_bad_rows(stores, tmp_path_factory, rows, ratings):
    import csv

    root = tmp_path_factory.mktemp("ml")
    (root / "posters").mkdir()
    (root / "posters" / "1.jpg").write_bytes(VALID_IMAGES["JPEG"][:100])  # a truncated poster
    for name, header, body in (("items.csv", ML_ITEMS_HEADER, [["1", "Toy Story", "0", "1", "1995", "o", "en", "81"]] + rows),
                               ("ratings.csv", ["user_id", "movie_id", "rating", "unix_timestamp"], ratings)):
        with open(root / name, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(body)
    try:
        data = load_movielens_posters(root)
    except ValidationError as exc:  # e.g. a NUL byte written into the file
        assert str(root) in str(exc)
        return
    with stores.new() as store:
        result = store.ingest(data)
        after = snapshot(store)
    assert all(r.source.startswith(str(root)) and r.column for r in result.report.rows)
    assert any(r.row == 1 and r.column == "image_path" and "truncated" in r.reason for r in result.report.rows)
    old = stores.tables[0].set_index("item_id")["content_hash"]
    new = after[0].set_index("item_id")["content_hash"]
    in_file = {str(v).strip() for v in data.items["item_id"].tolist() if isinstance(v, str)}
    unchanged = [i for i in old.index if i not in in_file]
    assert (new.loc[unchanged] == old.loc[unchanged]).all()


@FUZZ_SMALL
@given(ids=st.lists(st.one_of(st.integers(-5, 5), st.none()), min_size=1, max_size=6), data=st.data())
def test_clothing_loader_with_bad_rows(stores, tmp_path_factory, ids, data):
    n = len(ids)
    frame = pd.DataFrame({
        "Clothing ID": pd.array(ids, dtype="Int64"),
        "Title": data.draw(st.lists(st.one_of(st.none(), st.text(max_size=10)), min_size=n, max_size=n)),
        "Review Text": data.draw(st.lists(st.one_of(st.none(), st.sampled_from(ENCODABLE_TEXT)), min_size=n,
                                          max_size=n)),
        "Rating": data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)),
        "Class Name": data.draw(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=n, max_size=n)),
    }).astype({"Title": object, "Review Text": object, "Class Name": object})
    path = tmp_path_factory.mktemp("cl") / "WomensClothingE-CommerceReviews.parquet.brotli"
    frame.to_parquet(path, compression="brotli")
    loaded = load_clothing_reviews(path.parent)
    with stores.new() as store:
        result = store.ingest(loaded)
        after = snapshot(store)
    assert len(after[1]) - len(stores.tables[1]) <= len(loaded.reviews)
    assert all(r.source == str(path) and r.column and r.row for r in result.report.rows)
    assert len(after[2]) == len(stores.tables[2])
    for rec in loaded.reviews.itertuples():  # NaN/inf ratings and missing ids are reported, never stored
        if not (np.isfinite(rec.rating) and isinstance(rec.item_id, str)):
            assert any(r.row == rec.Index + 1 for r in result.report.rows)


# ------------------------------------------------------------------------------ vectors

faiss = pytest.importorskip("faiss", reason="faiss-cpu (recgen[cpu]) is needed for the index tests")
from recgen.index import ItemIndex  # noqa: E402

DIM = 4

vector_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1e-45, 1e-320, 3e38, 1e300, -1e300, np.nan, np.inf]),
)


@st.composite
def vector_batches(draw):
    rows = draw(st.integers(0, 3))
    dim = draw(st.sampled_from([DIM, DIM, DIM, DIM - 1, DIM + 2]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.int64]))
    values = draw(st.lists(vector_values, min_size=rows * dim, max_size=rows * dim))
    with np.errstate(all="ignore"):
        arr = np.array(values, dtype=np.float64).reshape(rows, dim)
        if dtype is np.int64:
            arr = np.nan_to_num(arr, nan=0, posinf=0, neginf=0).clip(-(2**62), 2**62)
        arr = arr.astype(dtype)
    return arr


@FUZZ
@given(vecs=vector_batches(), op=st.sampled_from(["add", "upsert", "update", "search_batch", "search"]),
       normalize=st.booleans())
def test_item_index_rejects_bad_vectors_and_stays_unchanged(vecs, op, normalize):
    index = ItemIndex.build(["a", "b", "c"], np.eye(3, DIM, dtype=np.float32), use_gpu=False, normalize=normalize)
    before_ids, before_vecs = index.ids, index.get_vectors(["a", "b", "c"])
    ids = {"add": ["x", "y", "z"], "upsert": ["a", "y", "z"], "update": ["a", "b", "c"]}.get(op, [])[: len(vecs)]
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent overflow/cast warnings either
        try:
            if op in ("search_batch", "search"):
                if op == "search":
                    assume(len(vecs) == 1)
                    out_ids, scores = index.search(vecs[0], k=2)
                else:
                    out_ids, scores = index.search_batch(vecs, k=2)
                assert not np.isnan(scores).any()
            else:
                getattr(index, op)(ids, vecs)
        except (ValueError, TypeError) as exc:
            arg = "queries" if op.startswith("search") else "vectors"
            assert arg in str(exc) or "query" in str(exc), exc
            assert index.ids == before_ids
            np.testing.assert_array_equal(index.get_vectors(["a", "b", "c"]), before_vecs)
            return
    with np.errstate(all="ignore"):
        finite = np.isfinite(vecs.astype(np.float64)).all()
    assert vecs.shape[1] == DIM and finite  # only good input gets here
    stored = index.get_vectors(index.ids)
    assert np.isfinite(stored).all()
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, rtol=1e-3)


def test_bug_huge_vectors_were_normalized_to_zeros():
    """Bug: a float32 row with |x| ~ 1e30 had an infinite float32 norm and was stored as all zeros."""
    index = ItemIndex.build(["a"], np.array([[3e38, 3e38, 0, 0]], dtype=np.float32), use_gpu=False)
    np.testing.assert_allclose(index.get_vectors(["a"]), [[2**-0.5, 2**-0.5, 0, 0]], rtol=1e-6)
    index.add(["tiny"], np.array([[1e-45, 0, 0, 0]], dtype=np.float32))  # subnormal: its norm underflowed to 0
    np.testing.assert_allclose(index.get_vectors(["tiny"]), [[1, 0, 0, 0]])
    ids, _ = index.search(np.array([1e300, 0, 0, 0]), k=1)  # finite float64, beyond float32
    assert ids.tolist() == ["tiny"]


def test_bug_complex_vectors_lost_their_imaginary_part():
    index = ItemIndex.build(["a"], np.eye(1, DIM, dtype=np.float32), use_gpu=False)
    with pytest.raises(TypeError, match="vectors must be a real-valued numeric array; got dtype complex128"):
        index.add(["b"], np.ones((1, DIM), dtype=complex))
    with pytest.raises(TypeError, match="queries must be a real-valued"):
        index.search(np.ones(DIM, dtype=complex))
    unnormalized = ItemIndex(DIM, normalize=False, use_gpu=False)
    with pytest.raises(ValueError, match=r"vectors has values beyond the float32 range .* rows \[0\]"):
        unnormalized.add(["a"], np.full((1, DIM), 1e300))
    assert len(unnormalized) == 0


@pytest.mark.parametrize("scale, unit", [(1_000, "milliseconds"), (1_000_000, "microseconds"),
                                         (1_000_000_000, "nanoseconds")])
def test_whole_column_of_epoch_sub_seconds_is_read_as_such(scale, unit, caplog):
    """Review finding: a column of epoch milliseconds (Amazon Reviews 2023) had every row
    rejected one by one. A column whose every value only fits as ms/us/ns is read in that unit."""
    secs = [1_700_000_000, 1_600_000_123]
    inter = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["a", "a"],
                          "timestamp": pd.Series([s * scale for s in secs], dtype="int64")})
    with caplog.at_level("WARNING", logger="recgen.catalog.schema"):
        clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == secs and not rep.rows
    assert unit in caplog.text


def test_column_mixing_seconds_and_milliseconds_is_reported_per_row():
    inter = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["a", "a"], "timestamp": [1_700_000_000_000, 1_700_000_000]})
    clean, rep = validate_interactions(inter)
    assert clean["timestamp"].tolist() == [1_700_000_000]
    assert [(r.row, r.column) for r in rep.rows] == [(1, "timestamp")]
