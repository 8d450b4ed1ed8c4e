"""``recgen doctor DIR``: is a working directory consistent, and what to do if not.

Checks, in order (each gives ``ok``, ``warn`` or ``fail`` with the fix in the message):

1. ``store``: the catalog store opens and its counts.
2. ``model``: every file of ``DIR/model`` matches its manifest checksum (a truncated, tampered
   or half-written file fails), then the model loads.
3. ``generators``: the same for ``DIR/generators`` when present.
4. ``indexes``: each FAISS index holds exactly the items that have that modality, no more, no
   fewer, and every vector is finite.
5. ``store vs model``: items ingested after the last ``recgen index`` (not served yet) and
   items the model serves that the store no longer has.
6. ``leftovers``: temporary files and directories of interrupted atomic writes, by the same
   rule and under the same folder locks as :mod:`recgen._io` (``.NAME.`` + 8 random characters +
   ``.tmp``, or a ``.old`` folder holding a complete recgen artefact), only for recgen's own
   names in the working folder and inside recgen artefact folders; ``fix=True`` recovers them
   as the next load or save would (:func:`recgen._io.remove_leftovers`). They never affect the live artefacts (writes
   are renamed into place only when complete), they only take disk space. The temp folder of
   a save in progress is locked and never listed nor removed, and a user's own file that only
   looks similar (``.notes.2024.old``) is not a leftover.
7. ``batch jobs``: unfinished resumable enrichment jobs (``*.parts`` folders).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recgen._io import find_leftovers, remove_leftovers
from recgen.workdir import (
    BAD_ROWS_FILE, BATCH_JOB_FILE, BATCH_PARTS_SUFFIX, GENERATORS_DIR, MANIFEST_FILE, METRICS_FILE, MODEL_DIR, REPORT_FILE,
    STORE_FILE, Workdir,
)

__all__ = ["Check", "diagnose"]


@dataclass(frozen=True)
class Check:
    """One finding of :func:`diagnose`."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str

    def __str__(self) -> str:
        return f"[{self.status.upper():4}] {self.name}: {self.detail}"


def diagnose(workdir: str | Path, *, store_url: str | None = None, fix: bool = False) -> list[Check]:
    """Check a recgen working directory; see the module docstring for the checks.

    Parameters
    ----------
    workdir : path
        Folder of ``recgen ingest`` / ``recgen index`` (``recgen.db``, ``model/``, ``generators/``).
    store_url : str, optional
        SQLAlchemy URL of the store when it is not ``WORKDIR/recgen.db``.
    fix : bool
        Remove leftovers of interrupted writes.

    Returns
    -------
    list of Check
    """
    from recgen.errors import ArtifactError

    workdir = Path(workdir)
    work = Workdir(workdir)
    if not workdir.is_dir():
        return [Check("workdir", "fail", f"{workdir} is not a directory")]
    checks: list[Check] = []

    store_items: set[str] | None = None
    db = work.store
    if store_url or db.exists():
        from recgen.catalog import CatalogStore

        try:
            with CatalogStore(store_url or db) as st:
                counts = st.counts()
                store_items = set(st.items()["item_id"].astype(str))
            checks.append(Check("store", "ok", ", ".join(f"{k} {v}" for k, v in counts.items())))
        except Exception as exc:  # noqa: BLE001 - any failure to open the store is the finding
            checks.append(Check("store", "fail", f"cannot read the store: {exc}"))
    else:
        checks.append(Check("store", "warn", f"no store at {db} (pass --store URL if it lives elsewhere)"))

    model = None
    mdir = work.model
    if not mdir.exists():
        checks.append(Check("model", "warn", f"no model at {mdir}: run `recgen index {workdir}`"))
    else:
        from recgen.model import Recgen

        try:
            model = Recgen.load(mdir, use_gpu=False)
            model.space.text_encoder  # noqa: B018 - loads lazily; a different text model fails here
            checks.append(Check("model", "ok", f"checksums verified; {len(model.items.ids)} items, "
                                               f"{len(model.profiles.user_ids_)} users, indexes "
                                               f"{', '.join(f'{m}={len(ix)}' for m, ix in model.indexes.items())}"))
        except (ArtifactError, OSError, ValueError) as exc:
            checks.append(Check("model", "fail", f"{exc}. Fix: run `recgen index {workdir}` to rebuild it"))

    gdir = work.generators
    if gdir.exists():
        from recgen._io import read_manifest

        try:
            read_manifest(gdir, kind=_manifest_kind(gdir), verify=True)
            for sub in sorted(p for p in gdir.iterdir() if p.is_dir() and (p / MANIFEST_FILE).exists()):
                read_manifest(sub, kind=_manifest_kind(sub), verify=True)
            checks.append(Check("generators", "ok", "checksums verified"))
        except (ArtifactError, OSError, ValueError) as exc:
            checks.append(Check("generators", "fail", f"{exc}. Fix: retrain and save the generators"))

    if model is not None:
        problems = []
        for m, ix in model.indexes.items():
            want = set(model.items.ids[model.items.present[m]].tolist())
            have = set(ix.ids)
            if want != have:
                problems.append(f"{m}: {len(want - have)} items missing from the index, {len(have - want)} extra")
        for m, v in model.items.vectors.items():
            if not np.isfinite(v).all():
                problems.append(f"{m}: {int((~np.isfinite(v)).any(axis=1).sum())} item vectors are NaN/inf")
        checks.append(Check("indexes", "fail", "; ".join(problems) + f". Fix: run `recgen index {workdir}`")
                      if problems else Check("indexes", "ok", "every index holds exactly its modality's items; "
                                                              "vectors finite"))
        if store_items is not None:
            served = set(model.items.ids.tolist())
            new, gone = store_items - served, served - store_items
            if new or gone:
                checks.append(Check("store vs model", "warn",
                                    f"{len(new)} stored items are not served yet (e.g. {sorted(new)[:3]}), "
                                    f"{len(gone)} served items are no longer stored (e.g. {sorted(gone)[:3]}). "
                                    f"Fix: `recgen index {workdir}`"))
            else:
                checks.append(Check("store vs model", "ok", f"the model serves exactly the {len(served)} stored items"))

    # recgen's own names in the working folder; deeper down, only inside recgen artefact folders
    ours = (STORE_FILE, BAD_ROWS_FILE, MODEL_DIR, GENERATORS_DIR, REPORT_FILE, METRICS_FILE)
    left = find_leftovers(workdir, targets=ours)
    if left:
        if fix:
            left = remove_leftovers(workdir, targets=ours)
            checks.append(Check("leftovers", "ok", f"cleaned up {len(left)} leftover(s) of interrupted writes"))
        else:
            checks.append(Check("leftovers", "warn", f"{len(left)} leftover(s) of interrupted writes (harmless, "
                                                     f"e.g. {left[0].name}); `recgen doctor --fix` removes them"))
    else:
        checks.append(Check("leftovers", "ok", "no leftovers of interrupted writes"))

    parts = sorted(p for p in workdir.rglob(f"*{BATCH_PARTS_SUFFIX}") if (p / BATCH_JOB_FILE).exists())
    if parts:
        checks.append(Check("batch jobs", "warn", f"{len(parts)} unfinished enrichment job(s), e.g. {parts[0]}: "
                                                  f"re-run the same `recgen enrich` command to resume"))
    return checks


def _manifest_kind(directory: Path) -> str | None:
    import json

    try:
        return json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError, RecursionError):  # unreadable: read_manifest says why
        return None
