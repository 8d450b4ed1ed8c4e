"""Batch enrichment job: chunks, resume after a crash (exception and SIGKILL), inputs, errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from recgen import Enricher
from recgen_adapters.batch import enrich_file, iter_chunks


@pytest.fixture(scope="module")
def enricher(saved_workdir) -> Enricher:
    return Enricher.load(saved_workdir)


@pytest.fixture(scope="module")
def big(candidates) -> pd.DataFrame:
    """1,050 candidates (uneven last chunk) with a row id to check order and completeness."""
    df = pd.concat([candidates] * 4, ignore_index=True).head(1050)
    return df.assign(row=np.arange(len(df)))


@pytest.fixture()
def in_parquet(big, tmp_path):
    path = tmp_path / "cands.parquet"
    # small row groups, so chunks cut across row groups
    big.to_parquet(path, index=False, row_group_size=77)
    return path


def _reference(enricher, big, tmp_path):
    out = enrich_file(enricher, _write(big, tmp_path / "ref.parquet"), tmp_path / "ref-out.parquet", chunk_rows=1000,
                      progress=False)
    return pd.read_parquet(out.output)


def _write(df, path):
    df.to_parquet(path, index=False)
    return path


def test_chunks_are_exact_and_complete(in_parquet, big):
    sizes = [len(c) for c in iter_chunks(in_parquet, 200)]
    assert sizes == [200] * 5 + [50]
    rows = pd.concat(iter_chunks(in_parquet, 200), ignore_index=True)
    pd.testing.assert_frame_equal(rows, big)


def test_output_equals_in_memory_enrichment(enricher, in_parquet, big, tmp_path):
    res = enrich_file(enricher, in_parquet, tmp_path / "out.parquet", chunk_rows=200, progress=False)
    assert (res.rows, res.chunks, res.chunks_resumed) == (1050, 6, 0)
    got = pd.read_parquet(res.output)
    pd.testing.assert_frame_equal(got, enricher.enrich(big))
    assert not (tmp_path / "out.parquet.parts").exists()
    assert res.unknown_rows == int((~got["recgen_known_user"] | ~got["recgen_known_item"]).sum()) > 0


def test_resume_after_exception_gives_the_uninterrupted_rows(enricher, in_parquet, big, tmp_path):
    out = tmp_path / "out.parquet"

    def crash(n):
        if n == 2:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False, on_chunk=crash)
    assert not out.exists() and len(list((tmp_path / "out.parquet.parts").glob("part-*"))) == 3
    res = enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False)
    assert res.chunks_resumed == 3 and res.rows == 1050
    pd.testing.assert_frame_equal(pd.read_parquet(out), enricher.enrich(big))


# chunk 3 in the default run; tests/test_killpoints.py kills the batch job at 20 more points
@pytest.mark.parametrize("kill_at", [pytest.param(0, marks=pytest.mark.slow), 3,
                                     pytest.param(5, marks=pytest.mark.slow)])
def test_resume_after_sigkill(saved_workdir, enricher, in_parquet, big, tmp_path, kill_at):
    """A process killed with SIGKILL right after chunk ``kill_at`` was written; rerun completes it."""
    out = tmp_path / "out.parquet"
    script = textwrap.dedent(f"""
        import os, signal
        from recgen_adapters.batch import enrich_file
        def kill(n):
            if n == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
        enrich_file({str(saved_workdir)!r}, {str(in_parquet)!r}, {str(out)!r}, chunk_rows=200, progress=False,
                    on_chunk=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not out.exists()
    res = enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False)
    assert res.chunks_resumed == kill_at + 1
    got = pd.read_parquet(out)
    assert got["row"].tolist() == list(range(1050))
    pd.testing.assert_frame_equal(got, enricher.enrich(big))


def test_changed_input_discards_stale_parts(enricher, in_parquet, big, tmp_path, caplog):
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False,
                    on_chunk=lambda n: (_ for _ in ()).throw(KeyboardInterrupt()) if n == 1 else None)
    changed = big.assign(item_id=big["item_id"].iloc[::-1].to_numpy())
    changed.to_parquet(in_parquet, index=False)
    res = enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False)
    assert res.chunks_resumed == 0 and "discarding" in caplog.text
    pd.testing.assert_frame_equal(pd.read_parquet(out), enricher.enrich(changed))


def test_csv_input_keeps_string_ids_and_csv_output(enricher, tmp_path):
    src = tmp_path / "c.csv"
    src.write_text("user_id,item_id,score\nU0001,SKU-0001,0.5\n007,SKU-0002,1.0\nU0002,,0.1\n")
    res = enrich_file(enricher, src, tmp_path / "o.csv", chunk_rows=2, progress=False)
    got = pd.read_csv(res.output, dtype={"user_id": str})
    assert got["user_id"].tolist() == ["U0001", "007", "U0002"] and res.chunks == 2
    assert got["recgen_known_user"].tolist() == [True, False, True]
    assert got["recgen_known_item"].tolist() == [True, True, False]


def test_errors(enricher, in_parquet, tmp_path):
    with pytest.raises(FileNotFoundError):
        enrich_file(enricher, tmp_path / "none.parquet", tmp_path / "o.parquet")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        enrich_file(enricher, in_parquet, tmp_path / "o.xlsx")
    with pytest.raises(ValueError, match="differ from input"):
        enrich_file(enricher, in_parquet, in_parquet)
    with pytest.raises(ValueError, match="chunk_rows"):
        enrich_file(enricher, in_parquet, tmp_path / "o.parquet", chunk_rows=0)
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"uid": ["a"], "item_id": ["b"]}).to_parquet(bad)
    with pytest.raises(ValueError, match="user_col="):
        enrich_file(enricher, bad, tmp_path / "o.parquet", progress=False)


def test_job_file_pins_the_options(enricher, in_parquet, tmp_path):
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        enrich_file(enricher, in_parquet, out, chunk_rows=200, progress=False,
                    on_chunk=lambda n: (_ for _ in ()).throw(KeyboardInterrupt()))
    job = json.loads((tmp_path / "out.parquet.parts" / "_job.json").read_text())
    assert job["chunk_rows"] == 200 and job["input"]["size"] == os.path.getsize(in_parquet)
    res = enrich_file(enricher, in_parquet, out, chunk_rows=300, progress=False)  # other options: start over
    assert res.chunks_resumed == 0 and res.chunks == 4
