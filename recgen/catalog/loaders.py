"""Read catalog tables from files and from the named layouts of public datasets.

Loaders only read: they do not validate. :class:`recgen.catalog.store.CatalogStore`
validates on ingest and reports bad rows by file, row and column. To make that possible,
text files are decoded with ``errors="surrogateescape"``: a byte that is not UTF-8 becomes
a lone surrogate in one cell (reported as "not valid UTF-8") instead of failing the whole
load, and frames read from files carry their path in ``df.attrs["source"]``.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgen.catalog.data import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    REVIEW_COLUMNS,
    CatalogData,
    empty_frame,
)
from recgen.errors import ValidationError

__all__ = ["read_table", "load_frames", "load_movielens_posters", "load_clothing_reviews"]

log = logging.getLogger(__name__)

ACCEPTED_EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson", ".json")
_SAVE_AS_UTF8 = "save it as UTF-8 (e.g. iconv -t UTF-8, or 'CSV UTF-8' in a spreadsheet program)"
# byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one)
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_MANGLED = re.compile(r"^(.*)\.(\d+)$")

FrameOrPath = pd.DataFrame | str | os.PathLike


def _is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _text_encoding(path: Path, kind: str) -> str:
    """Encoding of a text table: UTF-8, or UTF-16/32 when the file starts with their byte-order mark.

    Raises ValidationError for a corrupt gzip file, and for NUL bytes without a byte-order
    mark (UTF-16 without BOM, or a binary file such as a spreadsheet or an image).
    """
    try:
        with (gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")) as fh:
            head = fh.read(4096)
    except _GZIP_ERRORS as exc:
        raise ValidationError(f"{path}: not a readable gzip file ({exc}); re-compress it with gzip") from exc
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head:
        raise ValidationError(
            f"{path}: contains NUL bytes, so it is not a UTF-8 {kind} file (UTF-16 without a byte-order "
            f"mark, or a binary file such as a spreadsheet or an image); {_SAVE_AS_UTF8}"
        )
    return "utf-8-sig"  # strips a UTF-8 byte-order mark, reads plain UTF-8 unchanged


def _open_text(path: Path, encoding: str = "utf-8-sig"):
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding=encoding, errors="surrogateescape", newline="")
    return open(path, encoding=encoding, errors="surrogateescape", newline="")


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _loads(text: str, where: str) -> Any:
    """json.loads with recgen's errors: file and line named, duplicate keys refused."""
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{where}: not valid JSON ({exc.msg}); JSON lines need one complete object per line"
        ) from exc
    except _DuplicateKey as exc:
        raise ValidationError(f"{where}: key {str(exc)!r} appears twice in one object; keep one") from exc
    except RecursionError as exc:
        raise ValidationError(f"{where}: JSON nested too deeply to read") from exc


def _read_json_lines(path: Path) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    encoding = _text_encoding(path, "JSON")
    with _open_text(path, encoding) as fh:
        first = fh.read(1)
        while first and first.isspace():
            first = fh.read(1)
        if first == "[":  # a plain JSON array of records (.json files)
            text = first + fh.read()
            try:
                data = json.loads(text, object_pairs_hook=_object_without_duplicate_keys)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
            except _DuplicateKey as exc:
                raise ValidationError(f"{path}: key {str(exc)!r} appears twice in one object; keep one") from exc
            except RecursionError as exc:
                raise ValidationError(f"{path}: JSON nested too deeply to read") from exc
            records = data
            for k, rec in enumerate(records, start=1):
                if not isinstance(rec, dict):
                    raise ValidationError(
                        f"{path} record {k}: expected a JSON object, got {type(rec).__name__}"
                    )
        else:
            fh.seek(0)
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                rec = _loads(line, f"{path} line {lineno}")
                if not isinstance(rec, dict):
                    raise ValidationError(
                        f"{path} line {lineno}: expected a JSON object, got {type(rec).__name__}"
                    )
                records.append(rec)
    # object dtype: pandas' Arrow-backed str dtype cannot hold the surrogates of bad bytes
    return pd.DataFrame(records, dtype=object)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON-lines file into a frame.

    CSV/TSV cells are read as text (``"007"`` stays ``"007"``; empty cells are NaN);
    validation converts numbers. Text files may be gzip-compressed (``.csv.gz``,
    ``.jsonl.gz``). ``.json`` files may hold JSON lines or one JSON array of objects.

    Parameters
    ----------
    path : str or os.PathLike
        File to read; its suffixes pick the format (``.parquet`` anywhere among them, as
        in ``.parquet.brotli``, means Parquet).

    Returns
    -------
    pandas.DataFrame
        With ``attrs["source"]`` set to the path, so validation reports name the file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the extension is none of the accepted ones.
    ValidationError
        When a JSON line does not parse (names file and line number).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        df = _read_parquet(path)
    elif any(s in suffixes for s in (".jsonl", ".ndjson", ".json")):
        try:
            df = _read_json_lines(path)
        except _GZIP_ERRORS as exc:
            raise ValidationError(f"{path}: not a readable gzip file ({exc}); re-compress it with gzip") from exc
        except UnicodeError as exc:  # e.g. a UTF-32 byte-order mark followed by other bytes
            raise ValidationError(_not_decodable(path, "its byte-order mark's encoding", exc)) from exc
    elif ".csv" in suffixes or ".tsv" in suffixes:
        df = _read_delimited(path, "\t" if ".tsv" in suffixes else ",", "TSV" if ".tsv" in suffixes else "CSV")
    else:
        raise ValueError(
            f"cannot read {path}: unknown extension {''.join(path.suffixes) or '(none)'}; "
            f"expected one of {', '.join(ACCEPTED_EXTENSIONS)} (optionally .gz-compressed)"
        )
    df.attrs["source"] = str(path)
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValidationError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}); the file is empty, truncated "
            "or not Parquet: write it again, e.g. with pandas.DataFrame.to_parquet"
        ) from exc


def _not_decodable(path: Path, encoding: str, exc: UnicodeError) -> str:
    return (
        f"{path}: cannot be decoded as {encoding} ({exc.reason} at byte {getattr(exc, 'start', '?')}) "
        f"in its header line or byte-order mark; {_SAVE_AS_UTF8}"
    )


def _read_delimited(path: Path, sep: str, kind: str) -> pd.DataFrame:
    encoding = _text_encoding(path, kind)
    opts = dict(
        sep=sep, dtype=object, keep_default_na=False, na_values=[""], encoding=encoding,
        encoding_errors="surrogateescape",
    )
    try:
        # index_col=False: a line with more fields than the header is an error, never a
        # silent shift of its values into an index
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(path, index_col=False, on_bad_lines="error", **opts)
    except pd.errors.EmptyDataError as exc:
        raise ValidationError(
            f"{path} is empty: a {kind} file needs a header line naming its columns (e.g. item_id{sep}title)"
        ) from exc
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().replace("Error tokenizing data. C error: ", "")
        raise ValidationError(
            f"{path}: malformed {kind} ({msg}); every line needs as many fields as the header line, "
            f"and values holding {sep!r}, quotes or line breaks must be quoted"
        ) from exc
    except _GZIP_ERRORS as exc:
        raise ValidationError(f"{path}: not a readable gzip file ({exc}); re-compress it with gzip") from exc
    except UnicodeError as exc:  # undecodable bytes in the header line (cells keep them, see above)
        raise ValidationError(_not_decodable(path, encoding, exc)) from exc
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas cut the extra fields of a line longer than the header (first data line only)
        raise ValidationError(
            f"{path}: malformed {kind} ({_first_long_line(path, sep, encoding)}); every line needs as many "
            f"fields as the header line, and values holding {sep!r}, quotes or line breaks must be quoted"
        )
    mangled = [c for c in df.columns if isinstance(c, str) and (m := _MANGLED.match(c)) and m.group(1) in df.columns]
    if mangled:  # pandas renames a repeated header "title" to "title.1": check the real header
        header = pd.read_csv(path, header=None, nrows=1, **opts).iloc[0].tolist()
        dup = sorted({str(h) for h in header if header.count(h) > 1})
        if dup:
            raise ValidationError(f"{path}: the header line names column(s) {dup} more than once; rename or drop the copies")
    return df


def _first_long_line(path: Path, sep: str, encoding: str) -> str:
    """Where a line has more fields than the header (only called on the error path)."""
    import csv

    with _open_text(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return f"line {reader.line_num} has {len(row)} fields, the header {len(header)}"
    return "a line has more fields than the header"


def _as_frame(obj: FrameOrPath | None, what: str) -> pd.DataFrame | None:
    if obj is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return read_table(obj)
    raise TypeError(f"{what} must be a DataFrame or a file path, got {type(obj).__name__}")


def load_frames(
    items: FrameOrPath | None = None,
    reviews: FrameOrPath | None = None,
    interactions: FrameOrPath | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> CatalogData:
    """Bundle frames or table files into a :class:`CatalogData` (no validation).

    Parameters
    ----------
    items, reviews, interactions : DataFrame or path, optional
        Frames, or files readable by :func:`read_table`. Missing ones become empty frames.
    image_root : path, optional
        Folder for relative ``image_path`` values; defaults to the folder of the items
        file when ``items`` is a path.
    name : str, optional
        Catalog name; defaults to the items file's stem, else ``"catalog"``.

    Returns
    -------
    CatalogData
    """
    items_df = _as_frame(items, "items")
    reviews_df = _as_frame(reviews, "reviews")
    interactions_df = _as_frame(interactions, "interactions")
    if image_root is None and isinstance(items, (str, os.PathLike)):
        image_root = Path(items).resolve().parent
    if name is None:
        name = Path(items).name.split(".")[0] if isinstance(items, (str, os.PathLike)) else "catalog"
    return CatalogData(
        items=items_df if items_df is not None else empty_frame(ITEM_COLUMNS),
        reviews=reviews_df if reviews_df is not None else empty_frame(REVIEW_COLUMNS),
        interactions=interactions_df if interactions_df is not None else empty_frame(INTERACTION_COLUMNS),
        name=name,
        image_root=Path(image_root) if image_root is not None else None,
    )


# ---------------------------------------------------------------------------------------
# MovieLens-100K with TMDB posters

MOVIELENS_GENRES = {
    "Action": "Action",
    "Adventure": "Adventure",
    "Animation": "Animation",
    "Children": "Children's",
    "Comedy": "Comedy",
    "Crime": "Crime",
    "Documentary": "Documentary",
    "Drama": "Drama",
    "Fantasy": "Fantasy",
    "FilmNoir": "Film-Noir",
    "Horror": "Horror",
    "Musical": "Musical",
    "Mystery": "Mystery",
    "Romance": "Romance",
    "SciFi": "Sci-Fi",
    "Thriller": "Thriller",
    "War": "War",
    "Western": "Western",
}

_MOVIELENS_LAYOUT = (
    "expected layout: DIR/items.csv (movie_id, title, genre flag columns, year, overview, "
    "original_language, runtime, ...), DIR/ratings.csv (user_id, movie_id, rating, unix_timestamp), "
    "DIR/posters/{movie_id}.jpg"
)


def _map_object(s: pd.Series, func: Any) -> pd.Series:
    """``s.map(func)`` kept as object dtype: pandas would infer its Arrow string dtype, which
    cannot hold the surrogates of undecodable bytes (they must reach validation to be reported)."""
    return pd.Series([func(v) for v in s.tolist()], index=s.index, dtype=object)


def _clean_number_text(v: Any) -> str | None:
    """'1995.0' -> '1995', '7.5' -> '7.5', NaN/'' -> None; other text is kept as is."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    text = str(v).strip()
    if not text:
        return None
    try:
        f = float(text)
    except ValueError:
        return text
    if not np.isfinite(f):
        return None
    return str(int(f)) if f.is_integer() else text


def _numeric_or_raw(s: pd.Series, kind: str) -> pd.Series:
    """Convert to numbers when every value converts; otherwise leave it for validation to report."""
    try:
        out = pd.to_numeric(s, errors="raise")
    except (ValueError, TypeError):
        return s
    if kind == "int" and pd.api.types.is_integer_dtype(out.dtype):
        return out.astype("int64")
    return out.astype("float64") if kind == "float" else out


def load_movielens_posters(path: str | os.PathLike[str]) -> CatalogData:
    """Load MovieLens-100K with TMDB overviews and posters (``movielens-posters`` layout).

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding ``items.csv``, ``ratings.csv`` and ``posters/{movie_id}.jpg``.

    Returns
    -------
    CatalogData
        ``name="movielens"``. Items: ``item_id=str(movie_id)``, ``title``,
        ``description`` = TMDB overview (``""`` when missing), ``attributes`` with
        ``genres`` (``"Action, Comedy"``), ``year``, ``language``, ``runtime`` (strings;
        missing ones left out), ``image_path`` = absolute poster path or None when the
        poster file is absent. Interactions from ``ratings.csv`` (``event="rating"``).
        No reviews (an empty frame with the schema's columns).

    Notes
    -----
    ``items.csv`` of this dataset lists some ``movie_id`` twice (1,746 rows, 1,682 ids);
    that is a known property of the published file, not an input error, so the first row
    of each id is kept and the others are dropped here. Ratings are returned unfiltered:
    ratings of movies absent from ``items.csv`` are reported by the store on ingest.
    If ``posters/`` is missing, items are returned without images (a warning is logged).

    Raises
    ------
    FileNotFoundError
        When the folder, ``items.csv`` or ``ratings.csv`` is missing.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"movielens-posters folder not found: {root}; {_MOVIELENS_LAYOUT}")
    missing = [n for n in ("items.csv", "ratings.csv") if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} lacks {', '.join(missing)}; {_MOVIELENS_LAYOUT}")
    posters = root / "posters"
    if not posters.is_dir():
        log.warning("%s has no posters/ folder; movielens items are loaded without images", root)

    raw = read_table(root / "items.csv")
    need = [c for c in ("movie_id", "title") if c not in raw.columns]
    if need:
        raise ValidationError(
            f"{root / 'items.csv'} lacks column(s) {need}; columns found: {list(raw.columns)}; {_MOVIELENS_LAYOUT}"
        )
    ids = _map_object(raw["movie_id"], lambda v: v.strip() if isinstance(v, str) else v)
    raw = raw.assign(movie_id=ids)
    raw = raw[~raw["movie_id"].duplicated(keep="first") | raw["movie_id"].isna()].reset_index(drop=True)

    genre_cols = [c for c in MOVIELENS_GENRES if c in raw.columns]
    flags = np.zeros((len(raw), len(genre_cols)), dtype=bool)
    for j, c in enumerate(genre_cols):
        flags[:, j] = [_clean_number_text(v) == "1" for v in raw[c].tolist()]
    attr_sources = {"year": "year", "language": "original_language", "runtime": "runtime"}
    attr_values = {
        key: [_clean_number_text(v) for v in raw[col].tolist()] if col in raw.columns else [None] * len(raw)
        for key, col in attr_sources.items()
    }
    attributes = []
    for i in range(len(raw)):
        attrs: dict[str, str] = {}
        genres = [MOVIELENS_GENRES[c] for j, c in enumerate(genre_cols) if flags[i, j]]
        if genres:
            attrs["genres"] = ", ".join(genres)
        for key in attr_sources:
            if attr_values[key][i] is not None:
                attrs[key] = attr_values[key][i]
        attributes.append(attrs)

    image_paths = []
    for mid in raw["movie_id"]:
        p = posters / f"{mid}.jpg" if isinstance(mid, str) and mid else None
        image_paths.append(str(p.resolve()) if p is not None and p.is_file() else None)

    overview = raw["overview"] if "overview" in raw.columns else pd.Series([None] * len(raw), dtype=object)
    items = pd.DataFrame(
        {
            "item_id": pd.Series(raw["movie_id"].to_numpy(dtype=object), dtype=object),
            "title": pd.Series(raw["title"].to_numpy(dtype=object), dtype=object),
            "description": pd.Series(overview.fillna("").to_numpy(dtype=object), dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "image_path": pd.Series(image_paths, dtype=object),
        }
    )
    items.attrs["source"] = str(root / "items.csv")

    ratings = read_table(root / "ratings.csv")
    need = [c for c in ("user_id", "movie_id", "rating", "unix_timestamp") if c not in ratings.columns]
    if need:
        raise ValidationError(
            f"{root / 'ratings.csv'} lacks column(s) {need}; columns found: {list(ratings.columns)}; "
            f"{_MOVIELENS_LAYOUT}"
        )
    interactions = pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype(object),
            "item_id": ratings["movie_id"].astype(object),
            "timestamp": _numeric_or_raw(ratings["unix_timestamp"], "int"),
            "rating": _numeric_or_raw(ratings["rating"], "float"),
            "event": pd.Series(["rating"] * len(ratings), dtype=object),
        }
    )
    interactions.attrs["source"] = str(root / "ratings.csv")
    reviews = empty_frame(REVIEW_COLUMNS)
    return CatalogData(items=items, reviews=reviews, interactions=interactions, name="movielens", image_root=root)


# ---------------------------------------------------------------------------------------
# Women's Clothing E-Commerce Reviews

CLOTHING_FILE = "WomensClothingE-CommerceReviews.parquet.brotli"


def _join_title_text(title: Any, body: Any) -> str:
    parts = [str(x).strip() for x in (title, body) if isinstance(x, str) and x.strip()]
    if len(parts) == 2:
        head = parts[0]
        return f"{head} {parts[1]}" if head[-1] in ".!?" else f"{head}. {parts[1]}"
    return parts[0] if parts else ""


def load_clothing_reviews(path: str | os.PathLike[str]) -> CatalogData:
    """Load the Women's Clothing E-Commerce Reviews set (CC0, one Parquet file).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.parquet.brotli`` file, or the folder holding
        ``WomensClothingE-CommerceReviews.parquet.brotli``.

    Returns
    -------
    CatalogData
        ``name="clothing-reviews"``. Items: one per ``Clothing ID`` with
        ``title = f"{Class Name} #{id}"`` (``"Item #{id}"`` without a class),
        ``description=""``, ``attributes`` ``division``/``department``/``class`` (taken
        from the item's first review), no images. Reviews: ``item_id``, ``user_id=None``
        (the set has no reviewer ids), ``rating``, ``text = Title + ". " + Review Text``
        (either part alone when the other is missing), ``timestamp=0``. No interactions.

    Notes
    -----
    Rows with neither a title nor a review text (844 of 23,486 in the published file)
    carry only a star rating: they are not reviews and are dropped here. Their number is
    kept in ``reviews.attrs["n_dropped_without_text"]`` and logged.

    Raises
    ------
    FileNotFoundError
        When the file (or the folder) is missing.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CLOTHING_FILE
    if not p.is_file():
        raise FileNotFoundError(
            f"clothing reviews file not found: {p}; expected {CLOTHING_FILE} (Parquet with columns "
            "Clothing ID, Title, Review Text, Rating, Division Name, Department Name, Class Name)"
        )
    df = read_table(p)
    need = [c for c in ("Clothing ID", "Rating") if c not in df.columns]
    if need:
        raise ValidationError(f"{p} lacks column(s) {need}; columns found: {list(df.columns)}")

    def col(name: str) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([None] * len(df), dtype=object)

    ids = _map_object(col("Clothing ID"), lambda v: str(int(v)) if isinstance(v, (int, np.integer)) else v)
    first = pd.DataFrame(
        {
            "item_id": ids,
            "division": col("Division Name"),
            "department": col("Department Name"),
            "class": col("Class Name"),
        }
    ).drop_duplicates("item_id", keep="first")
    attributes, titles = [], []
    for row in first.itertuples(index=False):
        attrs = {
            k: str(v).strip()
            for k, v in (("division", row.division), ("department", row.department), ("class", row[3]))
            if isinstance(v, str) and v.strip()
        }
        attributes.append(attrs)
        titles.append(f"{attrs['class']} #{row.item_id}" if "class" in attrs else f"Item #{row.item_id}")
    items = pd.DataFrame(
        {
            "item_id": pd.Series(first["item_id"].to_numpy(dtype=object), dtype=object),
            "title": pd.Series(titles, dtype=object),
            "description": pd.Series([""] * len(first), dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "image_path": pd.Series([None] * len(first), dtype=object),
        }
    )
    items.attrs["source"] = str(p)

    text = pd.Series(
        [_join_title_text(t, b) for t, b in zip(col("Title").tolist(), col("Review Text").tolist())], dtype=object
    )
    has_text = (text != "").to_numpy()
    n_dropped = int((~has_text).sum())
    if n_dropped:
        log.info("%s: %d rows have neither title nor review text; dropped as non-reviews", p, n_dropped)
    reviews = pd.DataFrame(
        {
            "item_id": pd.Series(ids.to_numpy(dtype=object)[has_text], dtype=object),
            "user_id": pd.Series([None] * int(has_text.sum()), dtype=object),
            "rating": pd.to_numeric(col("Rating"), errors="coerce").to_numpy(dtype=float)[has_text],
            "text": pd.Series(text.to_numpy(dtype=object)[has_text], dtype=object),
            "timestamp": np.zeros(int(has_text.sum()), dtype=np.int64),
        }
    )
    reviews.attrs["source"] = str(p)
    reviews.attrs["n_dropped_without_text"] = n_dropped
    return CatalogData(items=items, reviews=reviews, name="clothing-reviews")
