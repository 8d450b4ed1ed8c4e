"""Headless Chromium driven over the Chrome DevTools Protocol, standard library only (tests only).

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages from file
descriptor 3 and writes to descriptor 4, each message JSON terminated by a NUL byte. A pipe
needs no websocket client, no port and nothing but the ``chromium`` binary (Debian package
``chromium``); Playwright talks to Chromium the same way.

    with HeadlessChromium(exe, workdir=tmp_path) as browser:
        page = browser.new_page()
        page.navigate("file:///.../report.html")
        page.evaluate("document.title")
        page.console_errors()        # console.error, uncaught exceptions, failed resource loads
        page.screenshot(tmp_path / "page.png")
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

#: Flags for a root user in a container without a display, GPU or network: no sandbox
#: (root), no background traffic (updates, sync, QUIC), a fresh profile per browser.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def _above_nine(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class BrowserError(RuntimeError):
    """Chromium exited, answered a command with an error, or did not answer in time."""


class HeadlessChromium:
    """One headless Chromium process and its DevTools pipe.

    Parameters
    ----------
    executable : str or path
        The Chromium binary (``/usr/bin/chromium``).
    workdir : path
        Folder for the fresh profile and the browser's own log (``chromium.log``).
    timeout : float
        Seconds to wait for any one answer.
    """

    def __init__(self, executable: str | os.PathLike[str], *, workdir: str | os.PathLike[str],
                 timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.workdir = Path(workdir)
        (self.workdir / "profile").mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "chromium.log"
        self._next_id = 0
        self._buffer = b""
        self._events: dict[str | None, list[dict]] = {}
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the child's ends above 9, so that moving them onto 3 and 4 cannot overwrite one another
        to_browser_r, from_browser_w = (_above_nine(fd) for fd in (to_browser_r, from_browser_w))

        def child_fds() -> None:  # runs in the child before exec: the protocol's fixed descriptors
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        cmd = [str(executable), *FLAGS, f"--user-data-dir={self.workdir / 'profile'}", "--remote-debugging-pipe",
               "about:blank"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(3, 4), preexec_fn=child_fds)
        os.close(to_browser_r)
        os.close(from_browser_w)

    # --- protocol ------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send one command and return its ``result``; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline, f"{method} (no answer)")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.setdefault(reply.get("sessionId"), []).append(reply)

    def events(self, session: str | None) -> list[dict]:
        """Events received so far for ``session`` (the browser's own when None)."""
        return self._events.setdefault(session, [])

    def wait_event(self, session: str | None, method: str, *, timeout: float | None = None) -> dict:
        """Wait for the next event ``method`` of ``session`` not seen by an earlier wait."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = self._events.setdefault(session, [])
        while True:
            for ev in seen:
                if ev["method"] == method and not ev.get("_waited"):
                    ev["_waited"] = True
                    return ev
            reply = self._read(deadline, f"event {method}")
            if "method" in reply:
                self._events.setdefault(reply.get("sessionId"), []).append(reply)

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium: timed out waiting for {what}; log:\n{self.log()}")
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the DevTools pipe (exit {self.process.poll()}); "
                                   f"log:\n{self.log()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # --- pages ---------------------------------------------------------------------------
    def new_page(self, *, width: int = 1400, height: int = 900) -> "Page":
        """A new tab with the Page, Runtime, Log and Network domains on, viewport ``width`` x ``height``."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        return Page(self, session)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab, attached in flat mode (commands carry its ``sessionId``)."""

    def __init__(self, browser: HeadlessChromium, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict | None = None, **kw) -> dict:
        return self.browser.call(method, params, session=self.session, **kw)

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait for its ``load`` event (images, scripts and styles loaded)."""
        res = self.call("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise BrowserError(f"navigating to {url}: {res['errorText']}")
        self.browser.wait_event(self.session, "Page.loadEventFired")

    def evaluate(self, expression: str, *, timeout: float | None = None) -> Any:
        """The JSON value of ``expression`` (promises awaited); a thrown error raises BrowserError."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                        timeout=timeout)
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluating {expression[:80]!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                failed = [r for r in self.requests() if r["failed"] or (r["status"] or 0) >= 400]
                raise BrowserError(f"{expression!r} still falsy after {timeout:.0f} s; console errors: "
                                   f"{self.console_errors()}; failed requests: {failed}")
            time.sleep(0.2)

    def console_errors(self) -> list[str]:
        """``console.error``/``console.assert`` calls, uncaught exceptions and error log entries (failed loads)."""
        out = []
        for ev in self.browser.events(self.session):
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description", "")))
                                                                  for a in p.get("args", [])))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("uncaught: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
        return out

    def requests(self) -> list[dict]:
        """Every request the page made: ``{"url", "status" (None until answered), "failed" (error text or None)}``."""
        by_id: dict[str, dict] = {}
        for ev in self.browser.events(self.session):
            p = ev.get("params", {})
            if ev["method"] == "Network.requestWillBeSent":
                by_id[p["requestId"]] = {"url": p["request"]["url"], "status": None, "failed": None}
            elif ev["method"] == "Network.responseReceived" and p["requestId"] in by_id:
                by_id[p["requestId"]]["status"] = p["response"]["status"]
            elif ev["method"] == "Network.loadingFailed" and p["requestId"] in by_id:
                by_id[p["requestId"]]["failed"] = p.get("errorText") or "failed"
        return list(by_id.values())

    def screenshot(self, path: str | os.PathLike[str], *, max_height: int = 12000) -> Path:
        """Save a PNG of the whole page (up to ``max_height`` CSS pixels tall) to ``path``."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path = Path(path)
        path.write_bytes(base64.b64decode(data["data"]))
        return path
