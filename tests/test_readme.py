"""The README tells the truth: its examples run, in order, against the sample shop.

Every fenced ``python`` and ``bash`` block of README.md is run in one fresh folder, in the
order it appears, so a block may use what an earlier one made (the ``shop/`` working folder,
``candidates.csv``...). ``.venv`` in that folder links to the interpreter running the tests,
so ``.venv/bin/recgen`` works as written. A block that cannot run here (it installs packages,
needs a cluster) must say so right above it::

    <!-- readme-test: skip: the reason -->

The only edit made to a block before running it: the HTTP example's port 8000 becomes a free
port, so a busy port 8000 on the test machine cannot fail it.

The column table is compared with :func:`recgen.catalog.columns.markdown_table`, so the
README cannot document columns the validators do not have.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<why>.+?)\s*-->")
RUNNABLE = ("python", "bash")
BLOCK_TIMEOUT = 600


@dataclass
class Block:
    lang: str
    code: str
    line: int
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """Fenced code blocks with their language, first line number and skip reason (if any)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise AssertionError(f"README.md line {start + 1}: unterminated code block")
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = SKIP.search(lines[k]) if k >= 0 else None
        blocks.append(Block(lang, "\n".join(lines[start + 1:j]) + "\n", start + 1,
                            marker.group("why") if marker else None))
        i = j + 1
    return blocks


def test_parser_sees_blocks_and_skip_markers():
    text = "intro\n\n<!-- readme-test: skip: needs a cluster -->\n```bash\nmake x\n```\n\n```python\nx = 1\n```\n"
    got = readme_blocks(text)
    assert [(b.lang, b.skip, b.line) for b in got] == [("bash", "needs a cluster", 4), ("python", None, 8)]


def test_every_code_block_runs_or_says_why_not():
    for b in readme_blocks(README.read_text(encoding="utf-8")):
        if b.lang in RUNNABLE or b.lang == "":
            continue
        assert b.skip, f"README.md line {b.line}: a ```{b.lang} block is neither runnable here nor marked skip"


def test_column_table_matches_the_schema():
    from recgen.catalog.columns import markdown_table

    text = README.read_text(encoding="utf-8")
    head = text.index("<!-- columns-table:")
    table = text[text.index("\n", head) + 1:].split("\n\n", 1)[0].strip()
    assert table == markdown_table(), "README's column table differs from recgen.catalog.columns; paste:\n" + \
        markdown_table()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(block: Block, cwd: Path, env: dict[str, str], index: int) -> subprocess.CompletedProcess:
    if block.lang == "bash":
        code = block.code.replace("8000", str(_free_port()))
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = cwd / f".readme_block_{index:02d}.py"
        script.write_text(block.code, encoding="utf-8")
        cmd = [sys.executable, str(script)]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: background jobs die with it
    try:
        out, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"README.md line {block.line}: timed out after {BLOCK_TIMEOUT}s\n{out[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running (a server)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def test_readme_examples_run(tmp_path):
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang in RUNNABLE]
    assert len(blocks) >= 8, "the README lost its examples?"
    work = tmp_path / "readme"
    work.mkdir()
    venv = Path(sys.executable).parent.parent
    (work / ".venv").symlink_to(venv, target_is_directory=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    ran = []
    for n, block in enumerate(blocks):
        if block.skip:
            continue
        res = _run(block, work, env, n)
        assert res.returncode == 0, (f"README.md line {block.line} ({block.lang}) failed with exit code "
                                     f"{res.returncode}:\n{block.code}\n--- output ---\n{res.stdout[-4000:]}")
        assert "Traceback (most recent call last)" not in res.stdout, f"README.md line {block.line}:\n{res.stdout}"
        ran.append((block.line, res.stdout))
    assert len(ran) >= 7
    # what the examples promise, checked on their output and files
    outputs = "\n".join(out for _, out in ran)
    assert (work / "shop" / "model" / "manifest.json").is_file()
    assert (work / "shop" / "generators" / "manifest.json").is_file()
    assert (work / "enriched.parquet").is_file()
    assert "(2, 128, 128, 3)" in outputs                    # the generator block's preview shape
    assert '"recgen_sim_fused"' in outputs                  # the HTTP example's JSON answer
    assert "DR:" in outputs                                 # the off-policy estimate prints itself
