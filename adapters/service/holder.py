"""The served model and its hot reload, in plain Python (no FastAPI, testable alone).

A :class:`ModelHolder` owns the model a service answers with, as one immutable
:class:`Served` snapshot. :meth:`ModelHolder.reload` loads the saved directory again
completely off to the side (checksums verified by :meth:`recgen.Enricher.load`), then swaps
the new snapshot in with one assignment; a request that read :meth:`ModelHolder.current`
once keeps answering from the snapshot it read, so no request ever mixes two versions. A
failed reload keeps the old snapshot serving, is logged and counted, and raises
:class:`~recgen.errors.ArtifactError`. With a ``reload_interval``, a background thread
compares :func:`recgen.workdir.directory_version` (two small file reads) with the served
version and reloads when it changed.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from recgen.enrich import Enricher
from recgen.errors import ArtifactError
from recgen.workdir import directory_version

__all__ = ["RELOAD_RESULTS", "UNSAVED_VERSION", "ModelHolder", "ReloadOutcome", "Served"]

log = logging.getLogger(__name__)

UNSAVED_VERSION = "unsaved"  # version of a model served from memory (never saved, cannot be reloaded)
RELOAD_ATTEMPTS = 5  # loads tried per reload: a save may be swapping the directory in right then
RELOAD_RESULTS = ("reloaded", "unchanged", "failed")


@dataclass(frozen=True)
class Served:
    """One loaded model version and what requests derive from it, swapped in as a whole.

    Attributes
    ----------
    enricher : recgen.Enricher
        The loaded model (and generators, when the directory has them).
    version : str
        Its :func:`~recgen.workdir.directory_version`, or ``"unsaved"`` for an in-memory model.
    item_ids : frozenset of str
        The model's item ids, for O(1) "is this item known" checks.
    """

    enricher: Enricher
    version: str
    item_ids: frozenset

    @classmethod
    def of(cls, enricher: Enricher) -> "Served":
        """The snapshot of ``enricher``."""
        return cls(enricher, enricher.model_version or UNSAVED_VERSION, frozenset(enricher.model.items.ids.tolist()))


@dataclass(frozen=True)
class ReloadOutcome:
    """What :meth:`ModelHolder.reload` did.

    Attributes
    ----------
    status : str
        ``"reloaded"``, or ``"unchanged"`` when the saved directory is the version served.
    model_version, previous_version : str
        The version served after and before the call.
    seconds : float
        Time the call took.
    """

    status: str
    model_version: str
    previous_version: str
    seconds: float


class ModelHolder:
    """The model a service answers with, reloadable from its directory while it serves.

    Parameters
    ----------
    source : path or Enricher
        A saved recgen directory (``model/``, optionally ``generators/``), loaded with
        :meth:`Enricher.load`; or an Enricher. One made by :meth:`Enricher.load` is reloaded
        from its directory with the same options; one built from an in-memory model is
        served as it is and cannot be reloaded.
    reload_interval : float, optional
        Seconds between two checks of the directory by the poller of
        :meth:`start_polling`; None (default): reload only when :meth:`reload` is called.
    on_swap : callable, optional
        Called with each :class:`Served` right after it is swapped in (the first one
        included), e.g. to update gauges.
    on_reload : callable, optional
        Called with each reload's result, one of :data:`RELOAD_RESULTS`.

    Attributes
    ----------
    counts : dict of str to int
        Reloads so far by result (``reloaded``, ``unchanged``, ``failed``).

    Examples
    --------
    >>> holder = ModelHolder("recgen-demo", reload_interval=30)
    >>> holder.start_polling()  # picks up a re-saved directory by itself
    >>> served = holder.current()  # read once per request
    >>> served.enricher.enrich(candidates)
    """

    def __init__(self, source: str | os.PathLike[str] | Enricher, *, reload_interval: float | None = None,
                 on_swap: Callable[[Served], Any] | None = None,
                 on_reload: Callable[[str], Any] | None = None) -> None:
        if reload_interval is not None and not (math.isfinite(reload_interval) and reload_interval > 0):
            raise ValueError(f"reload_interval must be a positive number of seconds or None; got {reload_interval}")
        if isinstance(source, Enricher):
            enricher = source
            self._reload_from = enricher._source  # (directory, Enricher.load kwargs) or None
        else:
            enricher = Enricher.load(source)
            self._reload_from = enricher._source or (str(Path(source).resolve()), {})
        self.reload_interval = reload_interval
        self.counts: dict[str, int] = dict.fromkeys(RELOAD_RESULTS, 0)
        self._on_swap, self._on_reload = on_swap, on_reload
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._swap(Served.of(enricher))

    # ------------------------------------------------------------------ reading
    def current(self) -> Served:
        """The snapshot served now. Read it once per request and use only that one."""
        return self._served

    @property
    def directory(self) -> str | None:
        """The directory reloads read, or None for an in-memory model."""
        return None if self._reload_from is None else self._reload_from[0]

    # ------------------------------------------------------------------ reloading
    def reload(self, *, force: bool = False) -> ReloadOutcome:
        """Load the directory again and swap the new model in.

        Parameters
        ----------
        force : bool
            Load even when the directory's fingerprint is the served version.

        Raises
        ------
        ArtifactError
            The holder serves an in-memory model (nothing to reload), or the directory
            could not be loaded after :data:`RELOAD_ATTEMPTS` tries (incomplete, corrupt or
            tampered): the old version keeps serving, and the failure is counted.
        """
        if self._reload_from is None:
            raise ArtifactError("this service was built from an in-memory model: there is no directory to reload")
        directory, kwargs = self._reload_from
        with self._lock:
            t0 = time.perf_counter()
            old = self._served
            new, error = None, None
            for attempt in range(RELOAD_ATTEMPTS):
                try:
                    if not force and directory_version(directory, kwargs.get("generators")) == old.version:
                        self._count("unchanged")
                        return ReloadOutcome("unchanged", old.version, old.version, time.perf_counter() - t0)
                    new = Enricher.load(directory, **kwargs)
                    break
                except (ArtifactError, OSError) as exc:
                    # a save may be swapping the directory in right now: wait a little and read again
                    error = exc
                    if attempt + 1 < RELOAD_ATTEMPTS:
                        time.sleep(0.05 * 2 ** attempt)
                except Exception as exc:  # noqa: BLE001 - a broken model must never take the service down
                    error = exc
                    break
            if new is None:
                self._count("failed")
                log.error("reload of %s failed, still serving model %s: %s", directory, old.version, error)
                raise ArtifactError(f"reload failed, still serving model {old.version}: {error}") from error
            self._swap(Served.of(new))
            self._count("reloaded")
            log.info("reloaded %s: model %s -> %s", directory, old.version, new.model_version)
            return ReloadOutcome("reloaded", self._served.version, old.version, time.perf_counter() - t0)

    def _swap(self, served: Served) -> None:
        # the swap is this one assignment: a request holds the Served it read until it ends
        self._served = served
        if self._on_swap is not None:
            self._on_swap(served)

    def _count(self, result: str) -> None:
        self.counts[result] += 1
        if self._on_reload is not None:
            self._on_reload(result)

    # ------------------------------------------------------------------ polling
    @property
    def polling(self) -> bool:
        """Whether the background poller runs."""
        return self._poller is not None and self._poller.is_alive()

    def start_polling(self) -> bool:
        """Start the background poller (a daemon thread) when there is something to poll.

        Returns
        -------
        bool
            True when a poller runs: ``reload_interval`` is set and the model has a
            directory. Calling it again while one runs starts no second one.
        """
        if not self.reload_interval or self._reload_from is None:
            return False
        if self.polling:
            return True
        # a fresh event per start, so a holder stopped once (one app lifespan) can poll again
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, args=(self._stop,), name="recgen-reload-poll",
                                        daemon=True)
        self._poller.start()
        return True

    def stop_polling(self, *, timeout: float = 5.0) -> None:
        """Stop the poller, waiting up to ``timeout`` seconds for a reload in progress to end."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=timeout)
            self._poller = None

    def _poll(self, stop: threading.Event) -> None:
        directory, kwargs = self._reload_from
        failed_version = None
        while not stop.wait(self.reload_interval):
            try:
                version = directory_version(directory, kwargs.get("generators"))
            except ArtifactError:
                continue  # mid-swap or being rewritten: look again next time
            if version in (self._served.version, failed_version):
                continue
            try:
                self.reload()
                failed_version = None
            except ArtifactError:
                failed_version = version  # logged and counted; retried when the directory changes again
