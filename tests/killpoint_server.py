"""Kill-point harness behind ``tests/test_killpoints.py`` (issue 6, crash safety).

One operation (``ingest``, ``save``, ``checkpoint`` or ``batch``) is run again and again in
forked children that are killed with SIGKILL part-way through. After every kill the files
on disk must be in the old or in a new *consistent* state (never a mix, never unreadable),
and running the same operation again, with no manual step, must end in exactly the state
of an uninterrupted run.

Two kinds of kill points, both seeded:

* **timed**: the parent sends SIGKILL after a random delay within the operation's measured
  duration (anywhere: inside SQLite, pandas, faiss, torch, a write...);
* **hooked**: the child kills itself just before or just after the k-th call of a
  primitive that changes files (``os.replace``, ``os.fsync``, the atomic directory exchange,
  ``shutil.rmtree``, ``os.unlink``, SQLite commit/execute), so the narrow windows between
  renames are hit on purpose rather than by luck.

The parent imports everything and prepares the data once, then forks, so a kill point costs
the operation, not an interpreter start. Threads are pinned to one (no OpenMP pool is alive
at fork time). Prints one JSON line per operation with the counts and any failures.

Usage::

    python tests/killpoint_server.py OP [OP ...] --work DIR --model DIR --points N --seed S
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


class Inconsistent(AssertionError):
    pass


# -- hooks: make a child kill itself at the k-th call of a file-changing primitive ----------

def _install_hooks(kill_at: int | None) -> dict[str, int]:
    """Wrap the primitives; count calls; SIGKILL self at event ``kill_at`` (2 events per call)."""
    import sqlalchemy.engine.default as sa_default

    import recgen._io as rio

    counter = {"events": 0, "names": []}

    def event(name: str) -> None:
        counter["events"] += 1
        counter["names"].append(name)
        if kill_at is not None and counter["events"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name):
        real = getattr(owner, name)

        def wrapped(*args, **kwargs):
            event(f"before {name}")
            try:
                return real(*args, **kwargs)
            finally:
                event(f"after {name}")

        setattr(owner, name, wrapped)

    for owner, name in ((os, "replace"), (os, "fsync"), (os, "unlink"), (shutil, "rmtree"), (rio, "_exchange"),
                        (sa_default.DefaultDialect, "do_commit"), (sa_default.DefaultDialect, "do_executemany"),
                        (sa_default.DefaultDialect, "do_execute")):
        wrap(owner, name)
    return counter


# -- the operations ---------------------------------------------------------------------------

def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class IngestOp:
    """Ingest an update (changed items, new items, reviews, interactions) into a store holding the sample."""

    def __init__(self, args):
        from recgen.catalog import CatalogStore
        from recgen.catalog.data import CatalogData
        from recgen.datasets import make_sample_catalog

        sample = make_sample_catalog(Path(args.work) / "sample", seed=0)
        self.pristine = Path(args.work) / "pristine.db"
        with CatalogStore(self.pristine) as st:
            st.ingest(sample)
        items = sample.items
        changed = items.head(20).assign(title=lambda d: d["title"] + " (2027 edition)")
        new = items.iloc[20:60].assign(item_id=lambda d: "NEW-" + d["item_id"].astype(str))
        users = sample.interactions["user_id"].drop_duplicates().head(40).to_numpy()
        inter = pd.DataFrame({"user_id": np.repeat(users, 2), "item_id": np.tile(new["item_id"].to_numpy()[:2], 40),
                              "timestamp": 1_900_000_000 + np.arange(80)})
        for col in sample.interactions.columns:
            if col not in inter:
                inter[col] = sample.interactions[col].iloc[0]
        reviews = sample.reviews.head(30).assign(item_id=new["item_id"].to_numpy()[:30])
        self.update = CatalogData(items=pd.concat([changed, new], ignore_index=True), reviews=reviews,
                                  interactions=inter[sample.interactions.columns], image_root=sample.image_root)
        self.db = Path(args.work) / "live" / "recgen.db"

    def prepare(self) -> None:
        shutil.rmtree(self.db.parent, ignore_errors=True)
        self.db.parent.mkdir(parents=True)
        shutil.copy(self.pristine, self.db)

    def run(self) -> None:
        from recgen.catalog import CatalogStore

        with CatalogStore(self.db) as st:
            st.ingest(self.update)

    def state(self) -> str:
        from recgen.catalog import CatalogStore

        with CatalogStore(self.db) as st:  # opening replays / rolls back SQLite's WAL
            frames = {"items": st.items(), "reviews": st.reviews(), "interactions": st.interactions()}
        out = {}
        for name, df in frames.items():
            df = df[[c for c in df.columns if not c.endswith("_at")]]  # ingestion timestamps differ per run
            out[name] = df.astype(str).sort_values(list(df.columns)).to_numpy().tolist()
        return _digest(out)


class SaveOp:
    """Save model B (10 items removed, so a different index) over a saved model A."""

    def __init__(self, args):
        from recgen import Recgen

        self.a = Recgen.load(Path(args.model) / "model")
        self.b = Recgen.load(Path(args.model) / "model")
        self.b.remove_items(list(self.b.items.ids[:10]))
        self.pristine = Path(args.work) / "pristine"
        self.a.save(self.pristine / "model")
        self.target = Path(args.work) / "live" / "model"

    def prepare(self) -> None:
        shutil.rmtree(self.target.parent, ignore_errors=True)
        shutil.copytree(self.pristine, self.target.parent)

    def run(self) -> None:
        self.b.save(self.target)

    def state(self) -> str:
        from recgen import Recgen
        from recgen.errors import ArtifactError

        try:
            model = Recgen.load(self.target)  # every checksum of every nested manifest verified
        except ArtifactError as exc:
            raise Inconsistent(f"saved model unreadable after the kill: {exc}") from exc
        manifest = json.loads((self.target / "manifest.json").read_text())
        return _digest([manifest["files"], model.items.ids.tolist(), sorted(model.indexes["fused"].ids)])

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.target.parent.iterdir() if p.name != "model")


class CheckpointOp:
    """Fit a tiny CVAE for 4 epochs with a checkpoint per epoch; resume after the kill."""

    def __init__(self, args):
        import torch

        torch.set_num_threads(1)
        from recgen.generators.cvae import CVAEConfig

        rng = np.random.default_rng(0)
        n = 64
        self.x = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        self.ic = rng.normal(size=(n, 4)).astype(np.float32)
        self.uc = rng.normal(size=(n, 4)).astype(np.float32)
        self.cfg = CVAEConfig(image_size=16, epochs=4, base_channels=8, latent_dim=4, cond_hidden=16, batch_size=32)
        self.ck = Path(args.work) / "live" / "ck"
        self.reference = self._weights(self._fit(None, resume=False))

    def _fit(self, ck, *, resume: bool):
        from recgen.generators.cvae import CVAEGenerator

        return CVAEGenerator(self.cfg).fit_arrays(self.x, self.ic, self.uc, checkpoint_dir=ck, resume=resume)

    @staticmethod
    def _weights(gen) -> str:
        h = hashlib.sha256()
        for name, net in sorted(gen._nets.items()):
            for k, v in sorted(net.state_dict().items()):
                h.update(f"{name}.{k}".encode())
                h.update(v.detach().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def prepare(self) -> None:
        shutil.rmtree(self.ck.parent, ignore_errors=True)
        self.ck.parent.mkdir(parents=True)

    def run(self) -> None:
        self._fit(self.ck, resume=True)

    def state(self) -> str:
        from recgen.errors import ArtifactError
        from recgen.generators.cvae import CVAEGenerator

        if not self.ck.exists():
            return "no checkpoint"
        try:
            gen = CVAEGenerator.load(self.ck)
        except ArtifactError as exc:
            raise Inconsistent(f"checkpoint unreadable after the kill: {exc}") from exc
        if gen.epochs_done == self.cfg.epochs:
            return self._weights(gen)  # must then be the uninterrupted run's weights
        return f"epoch {gen.epochs_done} of {self.cfg.epochs}"

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.ck.parent.iterdir() if p.name != "ck")


class BatchOp:
    """``enrich_file`` over 600 candidates in chunks of 100; the output is replaced at the end."""

    def __init__(self, args):
        from recgen import Enricher

        self.enricher = Enricher.load(args.model)
        model = self.enricher.model
        rng = np.random.default_rng(0)
        users = np.append(model.profiles.user_ids_, "NOBODY")
        items = model.items.ids
        n = 600
        self.input = Path(args.work) / "cands.parquet"
        pd.DataFrame({"user_id": rng.choice(users, n), "item_id": rng.choice(items, n),
                      "row": np.arange(n)}).to_parquet(self.input, index=False, row_group_size=70)
        self.out = Path(args.work) / "live" / "out.parquet"

    def prepare(self) -> None:
        shutil.rmtree(self.out.parent, ignore_errors=True)
        self.out.parent.mkdir(parents=True)

    def run(self) -> None:
        from recgen_adapters.batch import enrich_file

        enrich_file(self.enricher, self.input, self.out, chunk_rows=100, progress=False)

    def state(self) -> str:
        if not self.out.exists():
            return "no output"
        try:
            df = pd.read_parquet(self.out)
        except Exception as exc:  # noqa: BLE001 - any unreadable output is the failure being tested for
            raise Inconsistent(f"output unreadable after the kill: {exc!r}") from exc
        return _digest(pd.util.hash_pandas_object(df, index=True).tolist())

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.out.parent.iterdir() if p.name != "out.parquet")


class SaveFallbackOp(SaveOp):
    """:class:`SaveOp` with the atomic exchange unavailable (macOS, old libc): two renames, and
    a kill between them must be undone by the next load."""

    def __init__(self, args):
        import recgen._io as rio

        self._real = rio._exchange
        rio._exchange = lambda a, b: False
        super().__init__(args)

    def close(self) -> None:
        import recgen._io as rio

        rio._exchange = self._real


OPS = {"ingest": IngestOp, "save": SaveOp, "save-fallback": SaveFallbackOp, "checkpoint": CheckpointOp,
       "batch": BatchOp}


# -- the driver -----------------------------------------------------------------------------

def _child(op, kill_at: int | None, count_file: Path | None) -> None:
    """Body of a forked child: never returns."""
    code = 0
    try:
        counter = _install_hooks(kill_at)
        op.run()
        if count_file is not None:
            count_file.write_text(json.dumps(counter["names"]))
    except BaseException:  # noqa: BLE001 - reported through the exit code
        traceback.print_exc()
        code = 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fork(op, *, kill_at: int | None = None, kill_after: float | None = None,
          count_file: Path | None = None) -> str:
    """Run ``op.run`` in a child; return 'completed', 'killed' or 'error'."""
    pid = os.fork()
    if pid == 0:
        _child(op, kill_at, count_file)
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
        else:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    else:
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    return "completed" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "error"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ops", nargs="+", choices=sorted(OPS), help="operations, run one after the other")
    p.add_argument("--work", required=True)
    p.add_argument("--model", help="saved recgen directory (model/ + generators/)")
    p.add_argument("--points", type=int, default=24, help="kills per operation (about half aimed by hooks)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    status = 0
    for name in args.ops:
        work = Path(args.work) / name
        work.mkdir(parents=True, exist_ok=True)
        op_args = argparse.Namespace(**{**vars(args), "work": str(work)})
        op = OPS[name](op_args)
        try:
            summary = run_op(name, op, op_args)
        finally:
            if hasattr(op, "close"):
                op.close()
        print(json.dumps(summary), flush=True)
        status |= bool(summary["failures"])
    return status


def run_op(name: str, op, args) -> dict:
    """Kill ``op`` at ``args.points`` points; the summary lists every failure."""
    rng = np.random.default_rng(args.seed)

    # old state, then an uninterrupted run: the new state
    op.prepare()
    old = op.state()
    if _fork(op) != "completed":
        return {"op": name, "failures": ["the uninterrupted run failed"]}
    new = op.state()
    if old == new:
        return {"op": name, "failures": ["the operation changes nothing; the test would prove nothing"]}
    # a second, warm run: its duration and its sequence of hook events (the first pays set-up)
    op.prepare()
    count_file = Path(args.work) / "events.json"
    t0 = time.monotonic()
    if _fork(op, count_file=count_file) != "completed" or op.state() != new:
        return {"op": name, "failures": ["two uninterrupted runs disagree: the operation is not "
                                          "deterministic, so states cannot be compared"]}
    duration = time.monotonic() - t0
    names = json.loads(count_file.read_text())
    n_events = len(names)

    # aimed: just before and just after every rename, exchange and commit (the commit points),
    # at most 8 of them, the last ones first; then spread evenly over all events
    commits = [k + 1 for k, nm in enumerate(names)
               if nm.split()[-1] in ("replace", "_exchange", "do_commit")]
    aimed = sorted(set(commits[::-1][:8]))
    spread = np.linspace(1, n_events, max(2, args.points // 2 - len(aimed))).round().astype(int).tolist()
    plan = [("hook", k) for k in sorted(set(spread) | set(aimed))]

    def timed_points():
        # until --points children were really killed (a fast run may finish before its timer)
        for _ in range(3 * args.points):
            if kills >= args.points:
                return
            yield "timed", float(rng.uniform(0.02, 0.6) * duration)

    seen: dict[str, int] = {}
    failures: list[str] = []
    kills, hooked_kills, done = 0, 0, 0
    for kind, at in itertools.chain(plan, timed_points()):
        done += 1
        op.prepare()
        outcome = _fork(op, kill_at=at if kind == "hook" else None, kill_after=at if kind == "timed" else None)
        where = f"{kind} kill at {f'event {at} ({names[at - 1]})' if kind == 'hook' else f'{at:.3f}s'}"
        if outcome == "error":
            failures.append(f"{where}: the operation raised instead of being killed")
            continue
        killed = outcome == "killed"
        kills += killed
        hooked_kills += killed and kind == "hook"
        try:
            after_kill = op.state()
        except Inconsistent as exc:
            failures.append(f"{where}: {exc}")
            continue
        label = "old" if after_kill == old else "new" if after_kill == new else after_kill
        allowed = ("old", "new") if name != "checkpoint" else ("old", "new", "epoch 1 of 4", "epoch 2 of 4",
                                                                   "epoch 3 of 4")
        if label not in allowed:
            failures.append(f"{where}: state {after_kill} is neither the old nor the new one")
        if killed:
            seen[label] = seen.get(label, 0) + 1
        # recovery: just run it again
        if _fork(op) != "completed":
            failures.append(f"{where}: the next run failed")
            continue
        if op.state() != new:
            failures.append(f"{where}: the next run did not reach the uninterrupted run's state")
        if hasattr(op, "leftovers") and op.leftovers():
            failures.append(f"{where}: leftovers after the next run: {op.leftovers()}")
    return {"op": name, "points": done, "kills": kills, "hooked": hooked_kills, "hook_events": n_events,
            "duration_s": round(duration, 3), "states_after_kill": seen, "failures": failures}


if __name__ == "__main__":
    sys.exit(main())
