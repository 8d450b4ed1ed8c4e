"""Ids as the catalog stores them: one rule, used by every layer.

The catalog keeps item and user ids as strings. Callers hand them over in many shapes
(``int`` columns, ``42.0`` in float columns with missing values, nullable ``Int64``,
pandas ``string``); every public call that takes ids maps them through these two
functions, so ``42``, ``42.0`` and ``"42"`` name the same item everywhere (validation,
profiles, the space, enrichment, the adapters).

This module is the bottom layer: it imports nothing from recgen.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["id_string", "id_strings"]


def id_string(value: Any) -> tuple[str | None, str | None]:
    """One id as stored: ``(id, None)``, ``(None, None)`` when missing, ``(None, why)`` when invalid.

    Strings are stripped (blank is missing); integral numbers, also ``42.0``, become ``"42"``;
    booleans, fractional or non-finite numbers and other types are invalid. Text problems
    (NUL, lone surrogates) are the catalog validator's business and are not checked here.
    """
    if isinstance(value, str):
        return value.strip() or None, None
    if value is None or value is pd.NA or value is pd.NaT:
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, f"expected a string or integer id, got {type(value).__name__}"
    if isinstance(value, numbers.Integral):
        return str(int(value)), None
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f):
            return None, None
        if math.isfinite(f) and f.is_integer():
            return str(int(f)), None
        return None, f"expected a string or integer id, got {f!r}"
    return None, f"expected a string or integer id, got {type(value).__name__}"


def id_strings(values: Any) -> pd.Index:
    """Ids as the catalog stores them, vectorized: ints (also 42.0 in float columns) as "42", missing as "".

    Parameters
    ----------
    values : pandas.Series, array-like or sequence
        One id per entry.

    Returns
    -------
    pandas.Index of object (str)
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values) if not isinstance(values, np.ndarray) else values)
    if pd.api.types.is_integer_dtype(values.dtype):
        out = values.astype(str)
        if values.hasnans:  # nullable Int64 with <NA>
            out[values.isna()] = ""
        return pd.Index(out, dtype=object)
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & np.isfinite(values) & (values == values.round()) & (values.abs() < 2.0 ** 63)
        out = values.astype(str)
        out[whole] = values[whole].astype("int64").astype(str)
        out[values.isna()] = ""
        return pd.Index(out, dtype=object)
    if isinstance(values.dtype, pd.StringDtype):  # already text: one conversion, missing -> ""
        return pd.Index(values.str.strip().to_numpy(dtype=object, na_value=""), dtype=object)
    # object (or any other) column: the scalar rule, once per distinct value, so that 42, 42.0,
    # "42" and " 42 " are one id here as in the catalog; invalid ids (True, 4.5) match nothing
    codes, uniq = pd.factorize(values.to_numpy(dtype=object))
    table = np.array([(id_string(v)[0] or "") for v in uniq] + [""], dtype=object)
    return pd.Index(table[codes], dtype=object)
