"""Run ``recgen serve`` in a child process on loopback, for integration tests and load benchmarks.

>>> from recgen_adapters.testing import serve_subprocess
>>> with serve_subprocess("shop/", log_path="serve.log", args=["--api-key-file", "keys.txt"]) as served:
...     httpx.post(served.url + "/enrich", json=body, headers={"X-API-Key": key})

The server binds 127.0.0.1 only, on a free port, and is stopped (terminate, then kill) when
the block ends, whatever happens inside it.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

__all__ = ["ServedProcess", "free_port", "serve_subprocess"]


@dataclass
class ServedProcess:
    """A running ``recgen serve`` child: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """What the server has written so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def serve_subprocess(directory: str | os.PathLike[str], *, log_path: str | os.PathLike[str],
                     args: Sequence[str] = (), env: Mapping[str, str] | None = None, port: int | None = None,
                     startup_timeout: float = 120.0) -> Iterator[ServedProcess]:
    """Start ``recgen serve DIRECTORY`` on 127.0.0.1 and wait until ``/healthz`` answers 200.

    Parameters
    ----------
    directory : path
        A saved recgen directory (``model/`` and optionally ``generators/``).
    log_path : path
        File that receives the server's output.
    args : sequence of str
        More ``recgen serve`` options (``--api-key-file``, ``--rate-limit``...).
    env : mapping, optional
        Environment of the child; default: this process's, with ``HF_HUB_OFFLINE=1`` and no
        ``RECGEN_API_KEYS`` inherited (keys come from ``args``).
    port : int, optional
        Default: a free port.
    startup_timeout : float
        Seconds to wait for ``/healthz``.

    Raises
    ------
    RuntimeError
        The server exited or did not answer in time; the message holds its log.
    """
    port = port or free_port()
    log_path = Path(log_path)
    env = dict(env) if env is not None else {**os.environ, "HF_HUB_OFFLINE": "1", "RECGEN_API_KEYS": ""}
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", "from recgen.cli import main; main()", "serve", str(directory),
                                 "--host", "127.0.0.1", "--port", str(port), *args],
                                stdout=fh, stderr=subprocess.STDOUT, env=env)
    served = ServedProcess(url=f"http://127.0.0.1:{port}", process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(served.url):
            if proc.poll() is not None:
                raise RuntimeError(f"recgen serve exited with {proc.returncode}:\n{served.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"recgen serve did not answer /healthz in {startup_timeout:.0f} s:\n"
                                   f"{served.log()[-4000:]}")
            time.sleep(0.2)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
