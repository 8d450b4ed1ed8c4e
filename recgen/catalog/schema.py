"""Validation of raw frames into the catalog schema of :mod:`recgen.catalog.data`.

Each ``validate_*`` function takes a frame as loaded (from a file or built by the caller),
returns the *clean* frame in the documented schema and a :class:`ValidationReport` of the
rows it rejected. Every input row ends up in exactly one of the two: nothing is dropped
silently. Row numbers in the report are 1-based data rows (a file's header line is not
counted; for a frame, the positional index + 1), so ``row 7`` of ``items.csv`` is the
seventh record below the header.

Checks are done column-wise over numpy object arrays; only image checks open files one by
one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from recgen._io import sha256_file
from recgen.catalog.columns import INTERACTIONS, ITEMS, RATING_RANGE, REVIEWS, Column, Table
from recgen.errors import ValidationError
from recgen.ids import id_string

__all__ = [
    "BadRow",
    "ValidationReport",
    "validate_items",
    "validate_reviews",
    "validate_interactions",
    "decode_image",
    "MAX_IMAGE_PIXELS",
    "RATING_RANGE",
    "TIMESTAMP_RANGE",
]

#: Largest image (in pixels) accepted; larger ones are reported as decompression bombs.
MAX_IMAGE_PIXELS = 50_000_000
#: Inclusive range of timestamps (unix seconds): 0001-01-01 to 9999-12-31, UTC.
TIMESTAMP_RANGE = (-62_135_596_800, 253_402_300_799)

# NUL (SQL databases other than SQLite refuse it) and lone surrogates (not encodable as
# UTF-8: they would fail the database write). \udc80-\udcff are the undecodable bytes
# kept by loaders' errors="surrogateescape".
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_VALUE_REPR_LEN = 60
log = logging.getLogger(__name__)
_PIL_LOCK = threading.Lock()  # Pillow's size cap and truncation flag are module globals


def _short_repr(value: Any, limit: int = _VALUE_REPR_LEN) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break the report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class BadRow:
    """One rejected input row (one problem; a row with two problems appears twice).

    Attributes
    ----------
    source : str
        File path or frame name the row came from.
    row : int or None
        1-based data row number (header not counted); None for problems of no single row.
    column : str or None
        Column holding the bad value, None when the problem is the whole row.
    value : str
        Truncated ``repr`` of the offending value.
    reason : str
        What is wrong, in words.
    """

    source: str
    row: int | None
    column: str | None
    value: str
    reason: str

    def __str__(self) -> str:
        where = self.source if self.row is None else f"{self.source} row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason} (value: {self.value})"


@dataclass
class ValidationReport:
    """Every bad row found by a validation run.

    Attributes
    ----------
    rows : list of BadRow
        The problems, in the order found.
    n_checked : int
        Number of input rows examined (good and bad).

    Notes
    -----
    The report is truthy when it holds at least one bad row, so ``if report:`` reads as
    "if anything was rejected".
    """

    rows: list[BadRow] = field(default_factory=list)
    n_checked: int = 0

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    @property
    def n_bad_rows(self) -> int:
        """Number of distinct (source, row) pairs rejected."""
        return len({(r.source, r.row) for r in self.rows})

    def extend(self, other: "ValidationReport") -> "ValidationReport":
        """Append the rows of ``other`` (in place) and add its checked count; returns self."""
        self.rows.extend(other.rows)
        self.n_checked += other.n_checked
        return self

    def to_frame(self) -> pd.DataFrame:
        """The report as a frame with columns source, row, column, value, reason."""
        cols = ("source", "row", "column", "value", "reason")
        frame = pd.DataFrame(
            {c: pd.Series([getattr(r, c) for r in self.rows], dtype=object) for c in cols}
        )
        frame["row"] = pd.array([r.row for r in self.rows], dtype="Int64")
        return frame

    def format(self, max_rows: int = 20) -> str:
        """Human-readable listing, one problem per line, at most ``max_rows`` lines.

        Parameters
        ----------
        max_rows : int
            Lines of problems to show; the rest are summarised as ``... and N more``.
        """
        if not self.rows:
            return f"no bad rows ({self.n_checked} checked)"
        head = f"{len(self.rows)} problem(s) in {self.n_bad_rows} row(s) of {self.n_checked} checked:"
        lines = [head] + [f"  {r}" for r in self.rows[:max_rows]]
        if len(self.rows) > max_rows:
            lines.append(f"  ... and {len(self.rows) - max_rows} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# ---------------------------------------------------------------------------------------
# internal helpers


class _Checker:
    """Collects problems for one frame and tracks which rows are rejected."""

    def __init__(self, source: str, n: int):
        self.source = source
        self.bad = np.zeros(n, dtype=bool)
        self.report = ValidationReport(n_checked=n)

    def flag(self, positions: Iterable[int], column: str | None, values: Any, reason: Any) -> None:
        """Reject rows at ``positions``; ``values``/``reason`` are sequences aligned with them or scalars."""
        positions = list(positions)
        if not positions:
            return
        for k, pos in enumerate(positions):
            val = values[k] if isinstance(values, (list, np.ndarray)) else values
            why = reason[k] if isinstance(reason, (list, np.ndarray)) else reason
            self.report.rows.append(BadRow(self.source, int(pos) + 1, column, _short_repr(val), why))
        self.bad[positions] = True

    def flag_mask(self, mask: np.ndarray, column: str | None, raw: np.ndarray, reason: Any) -> None:
        pos = np.flatnonzero(mask)
        if isinstance(reason, np.ndarray):
            reason = list(reason[pos])
        self.flag(pos, column, list(raw[pos]), reason)

    def sort(self) -> None:
        self.report.rows.sort(key=lambda r: (r.row if r.row is not None else -1))


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, np.floating) and bool(np.isnan(v))


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as is, or None."""
    m = _BAD_CHARS.search(text)
    if m is None:
        return None
    c = m.group()
    if c == "\x00":
        return "contains a NUL character (\\x00); if the file is UTF-16, save it as UTF-8"
    if "\udc80" <= c <= "\udcff":
        return "not valid UTF-8 (undecodable bytes); save the file as UTF-8"
    return "contains a lone surrogate (not valid Unicode text); fix the text's encoding"


def _to_text(v: Any) -> tuple[str | None, str | None]:
    """(string, problem). Missing -> (None, None); numbers are written out; others are bad."""
    if isinstance(v, str):
        why = _text_problem(v)
        if why is not None:
            return None, why
        return v.strip(), None
    if _is_missing(v):
        return None, None
    if isinstance(v, (bool, np.bool_)):
        return None, f"expected a string, got {type(v).__name__}"
    if isinstance(v, numbers.Integral):
        return str(int(v)), None
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f):
            return None, f"expected a string, got {f}"
        return (str(int(f)) if f.is_integer() else repr(f)), None
    return None, f"expected a string, got {type(v).__name__}"


def _to_id(v: Any) -> tuple[str | None, str | None]:
    """Ids: strings (stripped) or integral numbers (42 and 42.0 -> "42"); see :func:`recgen.ids.id_string`."""
    if isinstance(v, str):
        why = _text_problem(v)
        if why is not None:
            return None, why
    return id_string(v)


def _column_values(df: pd.DataFrame, column: str) -> np.ndarray:
    return df[column].to_numpy(dtype=object)


def _text_column(
    chk: _Checker, df: pd.DataFrame, column: str, *, required: bool, missing_reason: str, kind: str = "text"
) -> np.ndarray:
    """Normalise a string column; returns an object array (None for missing)."""
    raw = _column_values(df, column)
    n = len(raw)
    fast = pd.api.types.is_integer_dtype(df[column].dtype) and bool(df[column].notna().all())
    if fast:  # integer ids/text: no per-row work needed
        return df[column].astype("int64").astype(str).to_numpy(dtype=object)
    conv = _to_id if kind == "id" else _to_text
    out = np.empty(n, dtype=object)
    problems: list[int] = []
    reasons: list[str] = []
    for i, v in enumerate(raw):
        s, why = conv(v)
        if why is not None:
            problems.append(i)
            reasons.append(why)
        elif required and not s:
            problems.append(i)
            reasons.append(missing_reason)
        out[i] = s
    chk.flag(problems, column, [raw[i] for i in problems], reasons)
    return out


def _numeric(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse numbers. Returns (float values, missing mask, non-numeric mask)."""
    n = len(raw)
    missing = np.fromiter((_is_missing(v) or (isinstance(v, str) and not v.strip()) for v in raw), bool, n)
    values = np.full(n, np.nan)
    try:
        parsed = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        # bools are numbers to pandas; they are not ratings
        isbool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), bool, n)
        parsed[isbool] = np.nan
        values = parsed
    except (TypeError, ValueError, OverflowError):  # lists/dicts or ints beyond float range: value by value
        for i, v in enumerate(raw):
            if isinstance(v, (bool, np.bool_)):
                continue
            if isinstance(v, (numbers.Real, str)):
                try:
                    values[i] = float(v)
                except OverflowError:  # an int too large for a float: infinite, reported as such
                    values[i] = math.inf if v > 0 else -math.inf
                except (TypeError, ValueError):
                    pass
    # "nan" as text is a NaN, not garbage: keep NaN-ness distinct from "could not parse"
    textual_nan = np.fromiter(
        (isinstance(v, str) and v.strip().lower() in ("nan", "+nan", "-nan") for v in raw), bool, n
    )
    float_nan = np.fromiter(
        (isinstance(v, (float, np.floating)) and not isinstance(v, bool) and math.isnan(v) for v in raw), bool, n
    )
    nonnum = np.isnan(values) & ~missing & ~textual_nan & ~float_nan
    missing = missing & ~float_nan  # real NaN floats reported as NaN, not as missing
    return values, missing, nonnum


def _rating_column(chk: _Checker, df: pd.DataFrame, column: str, *, required: bool, check_range: bool) -> np.ndarray:
    raw = _column_values(df, column)
    if pd.api.types.is_float_dtype(df[column].dtype) or pd.api.types.is_integer_dtype(df[column].dtype):
        values = df[column].to_numpy(dtype=float, na_value=np.nan)
        missing = np.zeros(len(values), bool)
        nonnum = np.zeros(len(values), bool)
    else:
        values, missing, nonnum = _numeric(raw)
    isnan = np.isnan(values) & ~missing & ~nonnum
    isinf = np.isinf(values)
    reason = np.full(len(values), "", dtype=object)
    reason[nonnum] = f"{column} is not a number"
    reason[isinf] = f"infinite {column}"
    if required:
        reason[missing] = f"missing {column}"
        reason[isnan] = f"NaN {column}"
    if check_range:
        lo, hi = RATING_RANGE
        with np.errstate(invalid="ignore"):
            out = np.isfinite(values) & ((values < lo) | (values > hi))
        reason[out] = f"{column} out of range {lo:g}..{hi:g}"
    bad = reason != ""
    chk.flag_mask(bad, column, raw, reason)
    values = values.copy()
    values[~np.isfinite(values)] = np.nan
    return values


_UNIT_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _datetimes_to_seconds(dt: pd.Series) -> np.ndarray:
    """tz-aware UTC datetime series -> float seconds (NaN for NaT).

    Works in the series' own unit: subtracting a nanosecond epoch overflows for dates
    outside 1677..2262, which pandas parses at a coarser unit.
    """
    arr = dt.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    unit = np.datetime_data(arr.dtype)[0]
    ticks = arr.view(np.int64)
    secs = np.floor_divide(ticks, _UNIT_PER_SECOND.get(unit, 1)).astype(float)
    secs[np.isnat(arr)] = np.nan
    return secs


def _seconds_from_epoch_unit(secs: np.ndarray, hi: float) -> tuple[np.ndarray, str | None]:
    """Whole columns of epoch milliseconds / microseconds / nanoseconds, read as seconds.

    Only when *every* finite value is beyond year 9999 as seconds (so none can be seconds)
    and all of them land between 1970 and 9999 at one scale: exports such as Amazon Reviews
    2023 use milliseconds. A column that mixes units is left alone and its bad rows reported.
    """
    finite = secs[np.isfinite(secs)]
    if not len(finite) or not (finite > hi).all():
        return secs, None
    for scale, unit in ((1e3, "milliseconds"), (1e6, "microseconds"), (1e9, "nanoseconds")):
        scaled = finite / scale
        if (scaled >= 0).all() and (scaled <= hi).all():
            return secs / scale, unit
    return secs, None


def _timestamp_column(chk: _Checker, df: pd.DataFrame, column: str, *, required: bool) -> np.ndarray:
    """Timestamps -> int64 unix seconds. Accepts numbers, numeric strings, ISO strings, datetimes."""
    col = df[column]
    n = len(col)
    if pd.api.types.is_integer_dtype(col.dtype) and bool(col.notna().all()):
        raw = _column_values(df, column)
        secs = col.to_numpy(dtype=float)
        missing = np.zeros(n, bool)
        unparsable = np.zeros(n, bool)
    elif isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        dt = col.dt.tz_localize("UTC") if getattr(col.dt, "tz", None) is None else col.dt.tz_convert("UTC")
        secs = _datetimes_to_seconds(dt)
        raw = _column_values(df, column)
        missing = np.isnan(secs)
        unparsable = np.zeros(n, bool)
    else:
        raw = _column_values(df, column)
        secs, missing, unparsable = _numeric(raw)
        # real NaN floats count as missing here
        missing = missing | (np.isnan(secs) & ~unparsable)
        # remaining non-numeric values may be datetime strings or datetime objects
        idx = np.flatnonzero(unparsable)
        if len(idx):
            sub = pd.Series(raw[idx], dtype=object)
            as_str = sub.map(lambda v: isinstance(v, str))
            parsed = np.full(len(idx), np.nan)
            if as_str.any():
                strs = sub[as_str].astype(object)
                dt = pd.to_datetime(strs, errors="coerce", utc=True, format="ISO8601")
                left = dt.isna().to_numpy()
                if left.any():  # not ISO 8601: let pandas guess per value
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        dt2 = pd.to_datetime(strs[left], errors="coerce", utc=True, format="mixed")
                    dt = dt.combine_first(dt2)
                parsed[as_str.to_numpy()] = _datetimes_to_seconds(dt)
            others = np.flatnonzero(~as_str.to_numpy())
            for k in others:  # datetime / Timestamp objects
                v = sub.iloc[k]
                try:
                    ts = pd.Timestamp(v)
                except (TypeError, ValueError):
                    continue
                if ts is pd.NaT:
                    continue
                ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                parsed[k] = math.floor(ts.timestamp())
            secs = secs.copy()
            secs[idx] = parsed
            unparsable = np.zeros(n, bool)
            unparsable[idx] = np.isnan(parsed)
    lo, hi = TIMESTAMP_RANGE
    secs, unit = _seconds_from_epoch_unit(secs, hi)
    if unit is not None:
        log.warning("%s: every timestamp is beyond year 9999 as seconds, but all fit as %s since 1970: "
                    "read as %s (pass seconds to silence this)", chk.source, unit, unit)
    reason = np.full(n, "", dtype=object)
    reason[unparsable] = f"unparsable {column}"
    reason[np.isinf(secs)] = f"unparsable {column}"
    with np.errstate(invalid="ignore"):
        out = np.isfinite(secs) & ((secs < lo) | (secs > hi))
    reason[out] = (
        f"{column} out of range: expected unix seconds in {lo}..{hi} (years 1 to 9999); "
        "milliseconds or nanoseconds must be divided by 1000 or 1e9"
    )
    if required:
        reason[missing] = f"missing {column}"
    chk.flag_mask(reason != "", column, raw, reason)
    if unit is None and pd.api.types.is_integer_dtype(col.dtype) and not (reason != "").any():
        return col.to_numpy(dtype=np.int64)  # exact: no round trip through float
    secs = np.where(np.isfinite(secs) & ~out, secs, 0.0)
    return np.floor(secs).astype(np.int64)


def _attributes_column(chk: _Checker, df: pd.DataFrame, column: str) -> np.ndarray:
    raw = _column_values(df, column)
    out = np.empty(len(raw), dtype=object)
    problems: list[int] = []
    reasons: list[str] = []
    for i, v in enumerate(raw):
        parsed, why = _to_attributes(v)
        out[i] = parsed if parsed is not None else {}
        if why is not None:
            problems.append(i)
            reasons.append(why)
    chk.flag(problems, column, [raw[i] for i in problems], reasons)
    return out


def _to_attributes(v: Any) -> tuple[dict[str, str] | None, str | None]:
    if isinstance(v, str):
        why = _text_problem(v)
        if why is not None:
            return None, why
        text = v.strip()
        if not text:
            return {}, None
        try:
            v = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"attributes is not valid JSON: {exc.msg}"
        except RecursionError:
            return None, "attributes JSON is nested too deeply"
        if not isinstance(v, dict):
            return None, f"attributes must be a JSON object, got {type(v).__name__}"
    elif _is_missing(v):
        return {}, None
    elif not isinstance(v, dict):
        return None, f"attributes must be a dict or a JSON object string, got {type(v).__name__}"
    out: dict[str, str] = {}
    for key, val in v.items():
        if _is_missing(val):
            continue
        if isinstance(val, (list, dict, tuple)):
            try:
                text = json.dumps(val, ensure_ascii=False, default=str)
            except (RecursionError, ValueError) as exc:  # nesting too deep, or a circular list
                return None, f"attribute {key!r} cannot be written as JSON ({type(exc).__name__})"
        else:
            text, why = _to_text(val)
            if why is not None:
                return None, f"attribute {key!r}: {why}"
            if text is None:
                continue
        key_text = str(key)
        why = _text_problem(key_text) or _text_problem(text)
        if why is not None:
            return None, f"attribute {_short_repr(key)}: {why}"
        out[key_text] = text
    return out, None


class ImageProblem(ValueError):
    """An image cannot be used; the message says why and how to fix it (internal)."""


def decode_image(source: Any):
    """Open ``source`` (path or bytes) as a fully decoded ``PIL.Image``, within the pixel cap.

    The size in the header is checked against :data:`MAX_IMAGE_PIXELS` *before* any pixel
    is decoded, and truncated files are refused even when the caller set Pillow's
    ``ImageFile.LOAD_TRUNCATED_IMAGES``. Pillow's own module globals are left as found
    (its truncation flag is forced off only while this function decodes, under a lock).

    Parameters
    ----------
    source : str, os.PathLike or bytes
        File path or the encoded bytes of an image.

    Returns
    -------
    PIL.Image.Image
        Loaded (decoded) image in its own mode; the caller converts it.

    Raises
    ------
    ValueError
        When the file is missing, empty, not an image, corrupt, truncated or over the cap;
        the message says which, and what to do.
    """
    import io

    from PIL import Image, ImageFile

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageProblem("image is empty (0 bytes)")
        opener: Any = lambda: io.BytesIO(source)  # noqa: E731
    else:
        try:
            size = os.path.getsize(source)
        except FileNotFoundError:
            raise ImageProblem("image file not found") from None
        except ValueError:  # embedded NUL: no such path can exist
            raise ImageProblem("image path is not a valid path (contains a NUL character)") from None
        except OSError as exc:
            raise ImageProblem(f"image file cannot be read: {exc.strerror or exc}") from None
        if not os.path.isfile(source):
            raise ImageProblem("image path is not a file")
        if size == 0:
            raise ImageProblem("image file is empty (0 bytes)")
        opener = lambda: open(source, "rb")  # noqa: E731
    # Pillow's truncation flag is a module global: only when someone set it do we take the
    # lock and clear it for the decode; otherwise decodes run in parallel (Pillow releases
    # the GIL while decoding)
    must_clear = bool(ImageFile.LOAD_TRUNCATED_IMAGES)
    with _PIL_LOCK if must_clear else contextlib.nullcontext():
        old_trunc = ImageFile.LOAD_TRUNCATED_IMAGES
        if must_clear:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with opener() as fh:
                # no warnings.catch_warnings() here (it is not thread-safe): Pillow's
                # DecompressionBombWarning starts above our own, lower cap, so it can only
                # come with an image that is refused just below
                im = Image.open(fh)  # reads the header only
                try:
                    w, h = im.size
                    if w * h > MAX_IMAGE_PIXELS:
                        raise ImageProblem(
                            f"image is {w}x{h} = {w * h} pixels, over the cap of {MAX_IMAGE_PIXELS} "
                            "(possible decompression bomb); downscale it"
                        )
                    if w * h == 0:
                        raise ImageProblem(f"image has no pixels ({w}x{h})")
                    im.load()
                except BaseException:
                    im.close()
                    raise
                return im
        except ImageProblem:
            raise
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - crafted files make Pillow raise many types
            raise ImageProblem(decode_failure(exc, truncated_fix="re-download or re-export it")) from None
        finally:
            if must_clear:
                ImageFile.LOAD_TRUNCATED_IMAGES = old_trunc


def decode_failure(exc: BaseException, *, truncated_fix: str) -> str:
    """What to tell the sender of an image whose decode raised ``exc``, and what to do about it.

    Pillow raises many exception types for crafted or damaged files; this names the problem
    (over Pillow's pixel limit, not an image, out of memory, truncated, or any other decode
    error) in one wording for every reader of images. ``truncated_fix`` says how to get the
    whole file (e.g. "re-send the whole file").
    """
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):  # over Pillow's own limit (set by the caller)
        return f"image is too large (possible decompression bomb): {exc}"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "image format not recognised (not an image file, or a corrupt header)"
    if isinstance(exc, MemoryError):
        return "image needs more memory to decode than is available; downscale it"
    msg = str(exc) or type(exc).__name__
    if "truncated" in msg.lower() or isinstance(exc, EOFError):
        return f"image file is truncated ({msg}); {truncated_fix}"
    return f"image cannot be decoded ({type(exc).__name__}: {msg})"


def _check_image(path: str) -> str | None:
    """None when ``path`` is a readable, complete image of sane size; else the problem."""
    try:
        decode_image(path).close()
    except ImageProblem as exc:
        return str(exc)
    return None


def _expand(path: Path) -> Path:
    """``~`` and ``~user`` expanded; kept as is when that home is unknown (then: image not found)."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _require_columns(df: Any, required: tuple[str, ...], source: str, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValidationError(
            f"{source}: {what} lacks required column(s) {missing}; columns found: {list(map(str, df.columns))}"
            + delimiter_hint(df.columns, source)
        )


# delimiters people export "CSV" with, by name; recgen reads .csv with commas and .tsv with tabs
_OTHER_DELIMITERS = {";": "semicolon", "|": "pipe", "\t": "tab"}


def delimiter_hint(header: Iterable[Any], source: str) -> str:
    """Why a header did not split: it is one field that splits on another delimiter ("" otherwise).

    A semicolon-separated export (Excel in many locales) read as CSV has one column named
    ``"item_id;title;..."``; saying so is more useful than "lacks required columns".
    """
    names = [str(c) for c in header]
    if len(names) != 1:
        return ""
    for sep, name in _OTHER_DELIMITERS.items():
        parts = [p.strip().strip('"') for p in names[0].split(sep)]
        if len([p for p in parts if p]) < 2:
            continue
        looks = f". The data looks {name}-delimited (its header splits on {sep!r} into {parts})"
        if source.startswith("<"):  # a frame the caller read: the fix is in their read_csv call
            return f"{looks}: read it with read_csv(..., sep={sep!r})"
        if sep == "\t":
            return f"{looks}: name the file .tsv"
        return (
            f"{looks}; recgen reads .csv files with commas and .tsv files with tabs: write it again with "
            f"commas, e.g. pandas.read_csv({source!r}, sep={sep!r}, dtype=str, keep_default_na=False)"
            f".to_csv('with-commas.csv', index=False)"
        )
    return ""


def _source(df: pd.DataFrame, source: str | None, what: str) -> str:
    if source is not None:
        return source
    return str(df.attrs.get("source", f"<{what} DataFrame>"))


def _ids_in(values: np.ndarray, known: set[str] | frozenset[str]) -> np.ndarray:
    return pd.Series(values, dtype=object).isin(known).to_numpy()


def _finish(chk: _Checker, columns: dict[str, Any]) -> tuple[pd.DataFrame, ValidationReport]:
    keep = ~chk.bad
    data = {}
    for name, arr in columns.items():
        arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
        data[name] = pd.Series(arr[keep], dtype=arr.dtype if arr.dtype != object else object)
    chk.sort()
    return pd.DataFrame(data), chk.report


def _with_optional_columns(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    """``df`` with every absent optional column of ``table`` added as missing values."""
    absent = [c.name for c in table.columns if c.name not in df.columns]
    if not absent:
        return df
    return df.assign(**{c: pd.Series([None] * len(df), index=df.index, dtype=object) for c in absent})


def _validate_column(chk: _Checker, df: pd.DataFrame, col: Column) -> np.ndarray:
    """Check and normalise one column by its kind (see :mod:`recgen.catalog.columns`)."""
    if col.kind in ("id", "text", "image"):
        out = _text_column(chk, df, col.name, required=col.required, missing_reason=col.why_missing,
                           kind="id" if col.kind == "id" else "text")
        if col.default is not None:
            out = np.array([v if v else col.default for v in out], dtype=object)
        return out
    if col.kind == "attributes":
        return _attributes_column(chk, df, col.name)
    if col.kind == "rating":
        return _rating_column(chk, df, col.name, required=col.required, check_range=col.bounded)
    if col.kind == "timestamp":
        return _timestamp_column(chk, df, col.name, required=col.required)
    raise AssertionError(f"no validator for column kind {col.kind!r}")  # Column checks kinds


def _validate_table(df: Any, table: Table, source: str | None) -> tuple[pd.DataFrame, _Checker, dict[str, np.ndarray]]:
    """The column checks shared by every table: required columns, then each column by its kind."""
    src = _source(df, source, table.name) if isinstance(df, pd.DataFrame) else str(source)
    if _empty_ok(df):
        df = pd.DataFrame({c: [] for c in table.names}, dtype=object)
    _require_columns(df, table.required, src, table.name)
    df = _with_optional_columns(df, table)
    chk = _Checker(src, len(df))
    return df, chk, {c.name: _validate_column(chk, df, c) for c in table.columns}


def _empty_ok(df: Any) -> bool:
    return isinstance(df, pd.DataFrame) and len(df) == 0 and len(df.columns) == 0


# ---------------------------------------------------------------------------------------
# public validators


def validate_items(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    check_images: bool = True,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate and normalise an items frame.

    Parameters
    ----------
    df : pandas.DataFrame
        Needs ``item_id`` and ``title``; ``description``, ``attributes`` and ``image_path``
        are optional (defaults ``""``, ``{}``, None). Extra columns are ignored.
    source : str, optional
        Name used in the report; defaults to ``df.attrs["source"]`` (set by
        :func:`recgen.catalog.loaders.read_table`) or ``"<items DataFrame>"``.
    image_root : path, optional
        Folder relative ``image_path`` values are resolved against (else the working dir).
    check_images : bool
        Open and fully decode every image (missing, empty, corrupt, truncated or over
        :data:`MAX_IMAGE_PIXELS` pixels -> bad row).

    Returns
    -------
    items : pandas.DataFrame
        Columns ``ITEM_COLUMNS + ("image_sha256",)``: ids and text as ``str`` (object
        dtype), ``attributes`` as ``dict[str, str]``, ``image_path`` absolute ``str`` or
        None, ``image_sha256`` hex digest of the image bytes or None.
    report : ValidationReport
        Rejected rows. A duplicated ``item_id`` keeps its first valid row.

    Raises
    ------
    ValidationError
        When ``item_id`` or ``title`` columns are missing.
    """
    df, chk, cols = _validate_table(df, ITEMS, source)
    item_id, image_raw = cols["item_id"], cols["image_path"]

    # duplicates among rows that are otherwise fine: the first valid one wins
    ids = pd.Series(item_id, dtype=object)
    candidates = ~chk.bad
    dup = np.zeros(len(df), bool)
    dup[candidates] = ids[candidates].duplicated(keep="first").to_numpy()
    if dup.any():
        first_row = {}
        for pos in np.flatnonzero(candidates & ~dup):
            first_row.setdefault(item_id[pos], pos + 1)
        pos = np.flatnonzero(dup)
        chk.flag(
            pos,
            "item_id",
            [item_id[p] for p in pos],
            [f"duplicate item_id (first seen in row {first_row[item_id[p]]})" for p in pos],
        )

    root = _expand(Path(image_root)) if image_root is not None else None
    image_path = np.empty(len(df), dtype=object)
    image_sha = np.empty(len(df), dtype=object)
    for i, p in enumerate(image_raw):
        if not p:
            continue
        path = _expand(Path(p))
        if not path.is_absolute() and root is not None:
            path = root / path
        full = os.path.abspath(path)
        image_path[i] = full
        if chk.bad[i]:
            continue
        if check_images:
            why = _check_image(full)
            if why is not None:
                chk.flag([i], "image_path", [df["image_path"].iloc[i]], why)
                continue
        try:
            image_sha[i] = sha256_file(full)
        except (OSError, ValueError):  # unchecked and unreadable: the item is kept without an image hash
            image_sha[i] = None

    return _finish(chk, {**cols, "image_path": image_path, "image_sha256": image_sha})


def validate_reviews(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    known_item_ids: set[str] | frozenset[str] | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate and normalise a reviews frame.

    Parameters
    ----------
    df : pandas.DataFrame
        Needs ``item_id``, ``rating`` and ``text``; ``user_id`` (default None) and
        ``timestamp`` (default 0) are optional.
    source : str, optional
        Name used in the report (see :func:`validate_items`).
    known_item_ids : set of str, optional
        When given, reviews of other items are rejected.

    Returns
    -------
    reviews : pandas.DataFrame
        Columns ``REVIEW_COLUMNS``: ``rating`` float64 within :data:`RATING_RANGE`,
        ``timestamp`` int64 unix seconds, ``user_id`` str or None.
    report : ValidationReport

    Raises
    ------
    ValidationError
        When a required column is missing.
    """
    df, chk, cols = _validate_table(df, REVIEWS, source)
    item_id = cols["item_id"]
    if known_item_ids is not None:
        unknown = ~chk.bad & ~_ids_in(item_id, known_item_ids)
        chk.flag_mask(unknown, "item_id", item_id, "unknown item_id (not in the catalog's items)")
    return _finish(chk, cols)


def validate_interactions(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    known_item_ids: set[str] | frozenset[str] | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate and normalise an interactions frame.

    Parameters
    ----------
    df : pandas.DataFrame
        Needs ``user_id``, ``item_id`` and ``timestamp``; ``rating`` (default NaN) and
        ``event`` (default ``"interaction"``) are optional.
    source : str, optional
        Name used in the report (see :func:`validate_items`).
    known_item_ids : set of str, optional
        When given, interactions with other items are rejected.

    Returns
    -------
    interactions : pandas.DataFrame
        Columns ``INTERACTION_COLUMNS``: ``timestamp`` int64 unix seconds, ``rating``
        float64 (NaN allowed, inf or non-numeric text rejected), ``event`` str.
    report : ValidationReport

    Raises
    ------
    ValidationError
        When a required column is missing.
    """
    df, chk, cols = _validate_table(df, INTERACTIONS, source)
    item_id = cols["item_id"]
    if known_item_ids is not None:
        unknown = ~chk.bad & ~_ids_in(item_id, known_item_ids)
        chk.flag_mask(unknown, "item_id", item_id, "unknown item_id (not in the catalog's items)")
    return _finish(chk, cols)
