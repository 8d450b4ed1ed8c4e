"""Read catalog tables from files (the named layouts of public datasets are in :mod:`recgen.datasets`).

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

import pandas as pd

from recgen.catalog.data import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    REVIEW_COLUMNS,
    CatalogData,
    empty_frame,
)
from recgen.catalog.schema import delimiter_hint
from recgen.errors import ValidationError

__all__ = ["read_table", "load_frames", "map_object"]

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
            f"and values holding {sep!r}, quotes or line breaks must be quoted" + _header_hint(path, sep, encoding)
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
            + _header_hint(path, sep, encoding)
        )
    mangled = [c for c in df.columns if isinstance(c, str) and (m := _MANGLED.match(c)) and m.group(1) in df.columns]
    if mangled:  # pandas renames a repeated header "title" to "title.1": check the real header
        header = pd.read_csv(path, header=None, nrows=1, **opts).iloc[0].tolist()
        dup = sorted({str(h) for h in header if header.count(h) > 1})
        if dup:
            raise ValidationError(f"{path}: the header line names column(s) {dup} more than once; rename or drop the copies")
    return df


def _header_hint(path: Path, sep: str, encoding: str) -> str:
    """:func:`delimiter_hint` for the file's header line (only called on the error path)."""
    import csv

    try:
        with _open_text(path, encoding) as fh:
            header = next(csv.reader(fh, delimiter=sep), [])
    except (OSError, UnicodeError, csv.Error):
        return ""
    return delimiter_hint(header, str(path))


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


def map_object(s: pd.Series, func: Any) -> pd.Series:
    """``s.map(func)`` kept as object dtype: pandas would infer its Arrow string dtype, which
    cannot hold the surrogates of undecodable bytes (they must reach validation to be reported)."""
    return pd.Series([func(v) for v in s.tolist()], index=s.index, dtype=object)
