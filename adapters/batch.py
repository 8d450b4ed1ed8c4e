"""Resumable batch enrichment: candidates file in, enriched Parquet/CSV out, in chunks.

``recgen enrich DIR --input candidates.parquet --output enriched.parquet`` calls
:func:`enrich_file`. The input is streamed in chunks of ``chunk_rows``; each enriched chunk
is written atomically as ``<output>.parts/part-NNNNNN.parquet`` next to the output, with a
``_job.json`` that pins the input file (size, mtime, fingerprint of its head and tail) and
the options. When every chunk is done the parts are merged into ``output`` (atomically: a
temp file renamed over it) and the parts folder is removed.

If the job is killed, running the same command again skips the chunks already written
and finishes the rest: the output has exactly the rows of an uninterrupted run, in input
order, none duplicated or lost. A changed input or different options discard the stale
parts (with a warning) instead of mixing two jobs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recgen._io import atomic_path, atomic_write_json
from recgen.enrich import Enricher
from recgen.workdir import BATCH_JOB_FILE, BATCH_PARTS_SUFFIX

log = logging.getLogger(__name__)

_FORMAT = 1
INPUT_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".jsonl")
OUTPUT_SUFFIXES = (".parquet", ".csv")


@dataclass
class BatchResult:
    """What a (possibly resumed) batch job did."""

    output: Path
    rows: int
    chunks: int
    chunks_resumed: int
    unknown_rows: int

    def __str__(self) -> str:
        resumed = f", {self.chunks_resumed} resumed from an earlier run" if self.chunks_resumed else ""
        return (f"wrote {self.rows} rows to {self.output} in {self.chunks} chunks{resumed} "
                f"({self.unknown_rows} with an unknown user or item: features NaN)")


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if st.st_size > 1 << 20:
            fh.seek(max(st.st_size - (1 << 20), 1 << 20))
            h.update(fh.read())
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head_tail": h.hexdigest()}


def iter_chunks(path: Path, chunk_rows: int, *, id_cols: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
    """Stream ``path`` (Parquet, CSV/TSV, JSON lines) as DataFrames of at most ``chunk_rows`` rows.

    Chunk boundaries depend only on the file and ``chunk_rows``, so a resumed job sees the
    same chunks. Id columns of text files are read as strings (``"007"`` stays ``"007"``).
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        pf = pq.ParquetFile(path)
        buf: list[pa.RecordBatch] = []
        n = 0
        for batch in pf.iter_batches(batch_size=chunk_rows):
            buf.append(batch)
            n += batch.num_rows
            while n >= chunk_rows:  # re-cut at exact chunk_rows, whatever the row-group layout
                table = pa.Table.from_batches(buf)
                yield table.slice(0, chunk_rows).to_pandas()
                rest = table.slice(chunk_rows)
                buf, n = rest.to_batches(), rest.num_rows
        if n:
            yield pa.Table.from_batches(buf).to_pandas()
        return
    dtype = {c: str for c in id_cols}
    if suffix in (".csv", ".tsv"):
        reader = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", chunksize=chunk_rows, dtype=dtype,
                             keep_default_na=False, na_values=[""])
    elif suffix == ".jsonl":
        reader = pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=dtype)
    else:
        raise ValueError(f"input must be one of {INPUT_SUFFIXES}; got {path.name}")
    with reader:
        yield from reader


def count_rows(path: Path) -> int | None:
    """Rows of a Parquet file from its footer (None for text files: not known without reading)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.ParquetFile(path).metadata.num_rows
    return None


def enrich_file(enricher: Enricher | str | Path, input: str | Path, output: str | Path, *,
                chunk_rows: int = 100_000, user_col: str = "user_id", item_col: str = "item_id",
                blurbs: bool = False, previews: bool = False, progress: bool = True,
                on_chunk: Callable[[int], None] | None = None) -> BatchResult:
    """Enrich a candidates file chunk by chunk, resumably; see the module docstring.

    Parameters
    ----------
    enricher : Enricher or path
        A loaded :class:`Enricher` or a saved recgen directory.
    input : path
        ``.parquet``, ``.csv``, ``.tsv`` or ``.jsonl`` with the id columns.
    output : path
        ``.parquet`` or ``.csv``. Replaced atomically at the end.
    chunk_rows : int, default 100,000
        Rows enriched and written at once (bounds memory).
    user_col, item_col : str
    blurbs, previews : bool
        Also add blurbs / preview PNG bytes (slow: generation runs per unique pair).
    progress : bool
        tqdm progress bar (rows).
    on_chunk : callable, optional
        Called with the chunk number after each chunk is durably written (tests use it to
        simulate crashes).

    Returns
    -------
    BatchResult
    """
    input, output = Path(input), Path(output)
    if not input.is_file():
        raise FileNotFoundError(f"input {input} does not exist")
    if input.suffix.lower() not in INPUT_SUFFIXES:
        raise ValueError(f"input must end in one of {INPUT_SUFFIXES}; got {input.name}")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output must end in .parquet or .csv; got {output.name}")
    if output.resolve() == input.resolve():
        raise ValueError("output must differ from input (the input is read while the output is written)")
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer; got {chunk_rows!r}")
    if not isinstance(enricher, Enricher):
        enricher = Enricher.load(enricher)

    parts = output.with_name(output.name + BATCH_PARTS_SUFFIX)
    job = {"format": _FORMAT, "input": _fingerprint(input), "chunk_rows": chunk_rows, "user_col": user_col,
           "item_col": item_col, "blurbs": blurbs, "previews": previews,
           "model": enricher.model.fit_info, "generator": getattr(enricher.generator, "version", None)}
    job_file = parts / BATCH_JOB_FILE
    if parts.exists():
        try:
            previous = json.loads(job_file.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(json.dumps(job, default=str)):
            log.warning("discarding %s: it belongs to a job with another input or other options", parts)
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not job_file.exists():
        atomic_write_json(job_file, job)

    total = count_rows(input)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="rows", desc=f"enrich {input.name}")
    done = resumed = unknown = rows = 0
    try:
        for n, chunk in enumerate(iter_chunks(input, chunk_rows, id_cols=(user_col, item_col))):
            part = parts / f"part-{n:06d}.parquet"
            if part.exists():
                meta = pq.ParquetFile(part).metadata
                if meta.num_rows == len(chunk):
                    resumed += 1
                    rows += len(chunk)
                    unknown += _unknown_in(part)
                    done += 1
                    if bar is not None:
                        bar.update(len(chunk))
                    continue
                log.warning("%s has %d rows but its chunk has %d: redoing it", part, meta.num_rows, len(chunk))
            out = enricher.enrich(chunk, user_col=user_col, item_col=item_col, blurbs=blurbs, previews=previews,
                                  preview_format="bytes")
            with atomic_path(part) as tmp:
                out.to_parquet(tmp, index=False)
            unknown += int((~out["recgen_known_user"] | ~out["recgen_known_item"]).sum())
            rows += len(out)
            done += 1
            if bar is not None:
                bar.update(len(out))
            if on_chunk is not None:
                on_chunk(n)
    finally:
        if bar is not None:
            bar.close()
    stale = sorted(parts.glob("part-*.parquet"))[done:]
    for p in stale:  # only if the input shrank between runs with an unchanged fingerprint
        p.unlink()
    _merge(sorted(parts.glob("part-*.parquet")), output)
    shutil.rmtree(parts, ignore_errors=True)
    return BatchResult(output=output, rows=rows, chunks=done, chunks_resumed=resumed, unknown_rows=unknown)


def _unknown_in(part: Path) -> int:
    t = pq.read_table(part, columns=["recgen_known_user", "recgen_known_item"]).to_pandas()
    return int((~t["recgen_known_user"] | ~t["recgen_known_item"]).sum())


def _merge(parts: list[Path], output: Path) -> None:
    """Concatenate the parts into ``output`` atomically, streaming (one part in memory at a time)."""
    if not parts:
        raise ValueError("the input has no rows")
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    schema = schema.remove_metadata()
    with atomic_path(output) as tmp:
        if output.suffix.lower() == ".parquet":
            with pq.ParquetWriter(tmp, schema) as writer:
                for p in parts:
                    table = pq.read_table(p).replace_schema_metadata(None)
                    writer.write_table(table if table.schema == schema else table.cast(schema))
        else:
            first = True
            for p in parts:
                frame = pq.read_table(p).to_pandas()
                frame.to_csv(tmp, mode="w" if first else "a", header=first, index=False)
                first = False
