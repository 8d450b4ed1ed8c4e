"""What `recgen ingest` says when it refuses a file must be true (issue 14, item 7).

A semicolon-delimited "CSV" (Excel's export in many locales) was refused with "nothing was stored
(--strict); all bad rows: WORKDIR/bad_rows.csv" although --strict was not given and no such file
was written, and without saying why its columns were missing.
"""
from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from recgen.catalog import CatalogStore
from recgen.cli import app
from recgen.errors import ValidationError

SEMICOLON_ITEMS = "item_id;title;description\n1;Red mug;a mug\n2;Blue mug;another mug\n"


def _ingest(tmp_path, *args: str):
    return CliRunner().invoke(app, ["ingest", str(tmp_path / "w"), *args])


def test_semicolon_csv_is_refused_with_a_true_message(tmp_path):
    """Regression: the message claimed --strict and named a bad_rows.csv that was never written."""
    path = tmp_path / "items.csv"
    path.write_text(SEMICOLON_ITEMS)
    res = _ingest(tmp_path, "--items", str(path))
    assert res.exit_code == 1, res.output
    assert "semicolon-delimited" in res.output
    assert "sep=';'" in res.output  # how to fix it
    assert "nothing was stored" in res.output
    assert "--strict" not in res.output  # it was not given
    assert "bad_rows.csv" not in res.output and not (tmp_path / "w" / "bad_rows.csv").exists()


def test_semicolon_csv_with_commas_in_values_says_semicolon_too(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id;title;description\n1;Red mug;small, red\n2;Blue mug;big\n")
    res = _ingest(tmp_path, "--items", str(path))
    assert res.exit_code != 0
    assert "malformed CSV" in res.output and "semicolon-delimited" in res.output, res.output


def test_strict_refusal_still_lists_the_bad_rows(tmp_path):
    path = tmp_path / "items.csv"
    pd.DataFrame({"item_id": ["1", "2"], "title": ["Red mug", ""]}).to_csv(path, index=False)
    res = _ingest(tmp_path, "--items", str(path), "--strict")
    assert res.exit_code == 1, res.output
    assert "nothing was stored (--strict)" in res.output
    bad = tmp_path / "w" / "bad_rows.csv"
    assert str(bad) in res.output and bad.is_file()


def test_python_api_names_the_delimiter(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(SEMICOLON_ITEMS)
    with CatalogStore(tmp_path / "s.db") as st, pytest.raises(ValidationError, match="semicolon-delimited"):
        st.ingest(items=path, check_images=False)
    # a frame the caller read with the wrong separator: the hint is about their read_csv call
    frame = pd.read_csv(path, dtype=str)
    with CatalogStore(tmp_path / "s.db") as st, pytest.raises(ValidationError, match=r"read_csv\(\.\.\., sep=';'\)"):
        st.ingest(items=frame, check_images=False)
