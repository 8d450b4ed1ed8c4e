"""``ItemIndex``: a FAISS index over the catalog's own string ids.

Why tombstones instead of ``IndexIDMap`` + ``remove_ids``: HNSW cannot remove, GPU flat
indexes cannot take explicit ids, and ``remove_ids`` on a flat index shifts every later
label. Here every vector sits in a *slot* whose number is also its FAISS label; removing
an item marks its slot dead, searches over-fetch and drop dead slots, and once dead slots
pass ``rebuild_fraction`` the index is rebuilt from the kept vectors (a trained IVF keeps
its centroids). The behaviour is the same for every factory string, on CPU and GPU.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recgen._io import atomic_save_npy, load_npy, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError, missing_extra

log = logging.getLogger(__name__)

_KIND = "item-index"
_PIP_CPU = "pip install 'recgen[cpu]'   (or: pip install faiss-cpu)"
_PIP_GPU = "pip install 'recgen[gpu]'   (or: pip install faiss-gpu; uninstall faiss-cpu first)"


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - exercised only without faiss
        raise missing_extra("faiss", _PIP_CPU, "the vector index") from exc
    return faiss


def auto_factory(n: int, *, exact_threshold: int = 20_000) -> str:
    """The factory string ``"auto"`` resolves to for ``n`` vectors.

    Exact search (``"Flat"``) below ``exact_threshold``; above it an inverted file with
    about ``4 * sqrt(n)`` lists, capped so every list gets at least 39 training points
    (FAISS warns below that).
    """
    if n < exact_threshold:
        return "Flat"
    nlist = int(min(4 * math.sqrt(n), n // 39))
    nlist = max(1, 2 ** int(round(math.log2(max(nlist, 1)))))
    while nlist * 39 > n and nlist > 1:
        nlist //= 2
    return f"IVF{nlist},Flat"


def _as_id_list(ids: Iterable[Any], name: str = "ids") -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ids, not a single {type(ids).__name__}; wrap it in a list")
    out = []
    for i, x in enumerate(ids):
        if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
            x = str(x)
        if not isinstance(x, (str, np.str_)) or not str(x):
            raise TypeError(f"{name}[{i}] is {x!r}; ids must be non-empty strings (or ints, converted to str)")
        out.append(str(x))
    return out


class ItemIndex:
    """Nearest-neighbour index over item vectors, keyed by the caller's string ids.

    Parameters
    ----------
    dim : int
        Vector dimension.
    factory : str, default "auto"
        A FAISS ``index_factory`` string (``"Flat"``, ``"IVF1024,Flat"``, ``"HNSW32"``,
        ``"IVF4096,PQ32"``...) or ``"auto"``: exact search below ``exact_threshold`` vectors,
        an IVF index above (see :func:`auto_factory`). Resolved when the index is first built.
    metric : {"ip", "l2"}, default "ip"
        Inner product (cosine when ``normalize``) or Euclidean distance. Scores are
        similarities for ``"ip"`` and negative squared distances for ``"l2"``, so larger
        is always better.
    normalize : bool, default True
        L2-normalize vectors and queries.
    nprobe : int, optional
        Lists visited per query by IVF indexes; default ``max(16, nlist // 16)``.
    exact_threshold : int, default 20000
        Size under which ``"auto"`` picks exact search.
    use_gpu : {"auto", True, False}, default "auto"
        Search on GPU when faiss-gpu and a CUDA device are present (``"auto"``), always
        (``True``: error if impossible), or never.
    rebuild_fraction : float, default 0.2
        Rebuild when this share of slots holds removed/replaced vectors.

    Examples
    --------
    >>> index = ItemIndex.build(["a", "b"], np.eye(2, dtype="float32"))
    >>> index.search(np.array([1.0, 0.1], dtype="float32"), k=1)
    (array(['a'], dtype=object), array([0.995...], dtype=float32))
    """

    def __init__(
        self,
        dim: int,
        *,
        factory: str = "auto",
        metric: str = "ip",
        normalize: bool = True,
        nprobe: int | None = None,
        exact_threshold: int = 20_000,
        use_gpu: bool | str = "auto",
        rebuild_fraction: float = 0.2,
    ) -> None:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim <= 0:
            raise ValueError(f"dim must be a positive int; got {dim!r}")
        if metric not in ("ip", "l2"):
            raise ValueError(f"metric must be 'ip' or 'l2'; got {metric!r}")
        if use_gpu not in ("auto", True, False):
            raise ValueError(f"use_gpu must be 'auto', True or False; got {use_gpu!r}")
        if not 0.0 < rebuild_fraction <= 1.0:
            raise ValueError(f"rebuild_fraction must be in (0, 1]; got {rebuild_fraction!r}")
        if nprobe is not None and nprobe <= 0:
            raise ValueError(f"nprobe must be a positive int or None; got {nprobe!r}")
        self.dim = int(dim)
        self.factory = factory
        self.metric = metric
        self.normalize = normalize
        self.nprobe = nprobe
        self.exact_threshold = exact_threshold
        self.use_gpu = use_gpu
        self.rebuild_fraction = rebuild_fraction
        self._lock = threading.RLock()
        self._index = None  # CPU faiss index: the source of truth
        self._gpu_index = None  # lazily made search replica
        self._resolved_factory: str | None = None
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._slot_ids: list[str | None] = []
        self._alive = np.empty(0, dtype=bool)
        self._slot_of: dict[str, int] = {}
        self._id_array: np.ndarray | None = None  # slot -> id lookup for the fast search path

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, **kwargs: Any) -> "ItemIndex":
        """Make an index holding ``vectors`` under ``ids`` (``kwargs`` go to ``__init__``)."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D (n, dim); got shape {vectors.shape}")
        index = cls(vectors.shape[1], **kwargs)
        index.add(ids, vectors)
        return index

    @property
    def resolved_factory(self) -> str | None:
        """The factory string actually used (``"auto"`` resolved), or None before the first add."""
        return self._resolved_factory

    @property
    def is_exact(self) -> bool:
        """True when searches are exhaustive (flat index)."""
        return (self._resolved_factory or "Flat").split(",")[0] in ("Flat", "IDMap,Flat")

    def _metric_const(self):
        faiss = _faiss()
        return faiss.METRIC_INNER_PRODUCT if self.metric == "ip" else faiss.METRIC_L2

    def _new_index(self, train_vectors: np.ndarray):
        faiss = _faiss()
        factory = self.factory
        if factory == "auto":
            factory = auto_factory(len(train_vectors), exact_threshold=self.exact_threshold)
        try:
            index = faiss.index_factory(self.dim, factory, self._metric_const())
        except RuntimeError as exc:
            raise ValueError(f"factory {factory!r} is not a valid FAISS index_factory string: {exc}") from exc
        if not index.is_trained:
            n_needed = self._min_train(index)
            if len(train_vectors) < n_needed:
                raise ValueError(
                    f"factory {factory!r} needs at least {n_needed} vectors to train; got {len(train_vectors)}. "
                    "Add more vectors at once, or use factory='Flat' / 'auto' for small catalogs"
                )
            try:
                index.train(train_vectors)
            except RuntimeError as exc:
                raise ValueError(
                    f"factory {factory!r} could not be trained on {len(train_vectors)} vectors: {exc}"
                ) from exc
        self._resolved_factory = factory
        self._apply_nprobe(index)
        return index

    @staticmethod
    def _min_train(index) -> int:
        faiss = _faiss()
        try:
            ivf = faiss.extract_index_ivf(index)
            return int(ivf.nlist)
        except RuntimeError:
            return 1

    def _apply_nprobe(self, index) -> None:
        faiss = _faiss()
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            return
        ivf.nprobe = int(self.nprobe or max(16, ivf.nlist // 16))

    # ----------------------------------------------------------------- validation
    def _check_vectors(self, vectors: Any, n: int | None, name: str = "vectors") -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.dtype == object or arr.dtype == bool or not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise TypeError(f"{name} must be a real-valued numeric array; got dtype {arr.dtype}")
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n, {self.dim}); got shape {arr.shape}")
        if arr.shape[1] != self.dim:
            raise ValueError(f"{name} has dim {arr.shape[1]}; this index expects {self.dim}")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"{name} has {arr.shape[0]} rows but {n} ids were given")
        # float64 input is checked before the cast (1e300 is finite but not a float32)
        work = arr if arr.dtype == np.float64 else np.asarray(arr, dtype=np.float32)
        finite = np.isfinite(work).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)[:5].tolist()
            raise ValueError(f"{name} has NaN or inf values in rows {bad} (showing up to 5); drop or fix those rows")
        if self.normalize:
            norms = np.linalg.norm(work, axis=1, keepdims=True)
            odd = ~((norms[:, 0] > np.finfo(np.float32).tiny) & np.isfinite(norms[:, 0]))
            if not odd.any():  # the common case: one pass, no extra copies
                work = work / norms
            else:
                # divide by max|x| first: the norm of huge rows (|x| > 1.8e19 in float32)
                # overflows to inf and would normalize them to zeros; tiny (subnormal) rows
                # underflow to 0
                scale = np.abs(work[odd]).max(axis=1, keepdims=True)
                zero = np.zeros(len(work), bool)
                zero[np.flatnonzero(odd)] = scale[:, 0] == 0
                if zero.any():
                    raise ValueError(
                        f"{name} has all-zero rows {np.flatnonzero(zero)[:5].tolist()}; they cannot be normalized"
                    )
                out = work / np.where(odd[:, None], 1, norms)
                scaled = work[odd] / scale
                out[odd] = scaled / np.linalg.norm(scaled, axis=1, keepdims=True)
                work = out
        else:
            big = np.abs(work).max(axis=1) > np.finfo(np.float32).max
            if big.any():
                raise ValueError(
                    f"{name} has values beyond the float32 range (|x| > 3.4e38) in rows "
                    f"{np.flatnonzero(big)[:5].tolist()}; rescale them"
                )
        return np.ascontiguousarray(work, dtype=np.float32)

    # ------------------------------------------------------------------ mutation
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add new items. Raises ``ValueError`` if an id is already present (use :meth:`upsert`)."""
        ids = _as_id_list(ids)
        vecs = self._check_vectors(vectors, len(ids))
        if len(set(ids)) != len(ids):
            seen, dup = set(), []
            for i in ids:
                (dup.append(i) if i in seen else seen.add(i))
            raise ValueError(f"ids has duplicates: {dup[:5]}")
        with self._lock:
            present = [i for i in ids if i in self._slot_of]
            if present:
                raise ValueError(f"ids already in the index: {present[:5]}; use upsert() or update() to replace them")
            self._append(ids, vecs)

    def _append(self, ids: list[str], vecs: np.ndarray) -> None:
        if not ids:
            return
        if self._index is None:
            self._index = self._new_index(vecs)
        start = len(self._slot_ids)
        self._index.add(vecs)
        need = start + len(vecs)
        if need > len(self._vectors):  # amortized growth: repeated small adds stay O(n)
            grown = np.empty((max(need, 2 * len(self._vectors)), self.dim), dtype=np.float32)
            grown[:start] = self._vectors[:start]
            self._vectors = grown
        self._vectors[start:need] = vecs
        self._slot_ids.extend(ids)
        self._id_array = None
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        for j, item_id in enumerate(ids):
            self._slot_of[item_id] = start + j
        self._gpu_index = None

    def remove(self, ids: Iterable[str]) -> None:
        """Remove items. Raises :class:`~recgen.errors.UnknownIdError` listing unknown ids (nothing removed)."""
        ids = list(dict.fromkeys(_as_id_list(ids)))  # a repeated id must not pop twice
        with self._lock:
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise UnknownIdError(f"{len(missing)} ids are not in the index, e.g. {missing[:5]}; nothing was removed")
            for i in ids:
                slot = self._slot_of.pop(i)
                self._alive[slot] = False
                self._slot_ids[slot] = None
            self._id_array = None
            self._maybe_rebuild()

    def update(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the vectors of existing items (unknown ids raise, nothing changes)."""
        ids = _as_id_list(ids)
        vecs = self._check_vectors(vectors, len(ids))
        with self._lock:
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise UnknownIdError(f"{len(missing)} ids are not in the index, e.g. {missing[:5]}; use add() or upsert()")
            self._replace(ids, vecs)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add new items and replace the vectors of existing ones."""
        ids = _as_id_list(ids)
        vecs = self._check_vectors(vectors, len(ids))
        with self._lock:
            self._replace(ids, vecs)

    def _replace(self, ids: list[str], vecs: np.ndarray) -> None:
        # last write wins inside one batch
        last = {item_id: j for j, item_id in enumerate(ids)}
        keep = sorted(last.values())
        for j in keep:
            slot = self._slot_of.pop(ids[j], None)
            if slot is not None:
                self._alive[slot] = False
                self._slot_ids[slot] = None
                self._id_array = None
        self._append([ids[j] for j in keep], vecs[keep])
        self._maybe_rebuild()

    def _maybe_rebuild(self) -> None:
        n_slots = len(self._slot_ids)
        if n_slots and (n_slots - len(self._slot_of)) > self.rebuild_fraction * n_slots:
            self.rebuild()

    def rebuild(self, *, refactor: bool = False) -> None:
        """Compact the index (drop removed vectors).

        Parameters
        ----------
        refactor : bool, default False
            Re-resolve ``factory="auto"`` for the current size and retrain (e.g. switch from
            exact to IVF once the catalog has grown).
        """
        with self._lock:
            ids, vecs = self._alive_arrays()
            if refactor or self._index is None:
                self._index = None
                self._resolved_factory = None
            else:
                self._index.reset()
            self._vectors = np.empty((0, self.dim), dtype=np.float32)
            self._slot_ids, self._slot_of = [], {}
            self._alive = np.empty(0, dtype=bool)
            self._gpu_index = None
            if ids:
                self._append(ids, vecs)

    def _alive_arrays(self) -> tuple[list[str], np.ndarray]:
        slots = np.flatnonzero(self._alive)
        return [self._slot_ids[s] for s in slots], self._vectors[slots]

    # -------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot_of

    def __repr__(self) -> str:
        return f"ItemIndex(n={len(self)}, dim={self.dim}, factory={self._resolved_factory or self.factory!r}, metric={self.metric!r})"

    @property
    def ids(self) -> list[str]:
        """Ids of the items in the index, in insertion order."""
        with self._lock:
            return self._alive_arrays()[0]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored (normalized) vectors of ``ids``, shape (len(ids), dim), float32."""
        ids = _as_id_list(ids)
        with self._lock:
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise UnknownIdError(f"{len(missing)} ids are not in the index, e.g. {missing[:5]}")
            return self._vectors[[self._slot_of[i] for i in ids]].copy()

    # -------------------------------------------------------------------- search
    def _search_index(self):
        if self._index is None:
            raise NotFittedError("the index is empty: add() vectors before searching")
        if self.use_gpu is False:
            return self._index
        if self._gpu_index is None:
            faiss = _faiss()
            n_gpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
            if n_gpu == 0:
                if self.use_gpu is True:
                    raise missing_extra("faiss GPU support", _PIP_GPU, "use_gpu=True (and a CUDA device)")
                return self._index
            self._gpu_index = faiss.index_cpu_to_all_gpus(self._index)
            log.info("ItemIndex: searching on %d GPU(s)", n_gpu)
        return self._gpu_index

    def search(self, query: np.ndarray, k: int = 10, *, exclude: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items to one query vector.

        Parameters
        ----------
        query : ndarray, shape (dim,)
        k : int
        exclude : iterable of str, optional
            Ids never returned (e.g. items the user has seen).

        Returns
        -------
        ids : ndarray of str (object), shape (<= k,)
        scores : ndarray of float32, shape (<= k,)
            Best first. Fewer than ``k`` only when the index holds fewer eligible items.
        """
        query = np.asarray(query)
        if query.ndim != 1:
            raise ValueError(f"query must be 1-D (dim,); got shape {query.shape}; use search_batch for many queries")
        ids, scores = self.search_batch(query[None, :], k, exclude=None if exclude is None else [exclude])
        keep = ids[0] != ""
        return ids[0][keep], scores[0][keep]

    def search_batch(
        self, queries: np.ndarray, k: int = 10, *, exclude: Sequence[Iterable[str] | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items for each row of ``queries``.

        Returns
        -------
        ids : ndarray of str (object), shape (n, min(k, len(self)))
            ``""`` pads rows with fewer eligible items.
        scores : ndarray of float32, same shape
            ``-inf`` where padded.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive int; got {k!r}")
        q = self._check_vectors(queries, None, name="queries")
        n = len(q)
        if exclude is not None and len(exclude) != n:
            raise ValueError(f"exclude has {len(exclude)} entries but there are {n} queries; give one (or None) per query")
        excl = [set() if e is None else set(_as_id_list(e, "exclude")) for e in (exclude or [None] * n)]
        k = int(min(k, max(len(self._slot_of), 1)))  # never allocate more columns than items
        out_ids = np.full((n, k), "", dtype=object)
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        with self._lock:
            index = self._search_index()
            total = index.ntotal
            n_dead = total - len(self._slot_of)
            if n_dead == 0 and total and not any(excl):  # empty index: slow path returns all padding
                # fast path: one search, vectorized label -> id mapping
                kf = min(total, k)
                scores, labels = index.search(q, kf)
                if self.metric == "l2":
                    scores = -scores
                if self._id_array is None or len(self._id_array) != len(self._slot_ids) + 1:
                    self._id_array = np.array(self._slot_ids + [""], dtype=object)  # label -1 maps to ""
                slot_ids = self._id_array
                out_ids[:, :kf] = slot_ids[labels]
                out_scores[:, :kf] = np.where(labels >= 0, scores, -np.inf)
                return out_ids, out_scores
            todo = np.arange(n)
            fetch = np.array([min(total, k + n_dead + len(e)) for e in excl])
            while len(todo):
                kf = int(fetch[todo].max())
                if kf == 0:
                    break
                # GPU indexes cap k (2048); deep over-fetches go to the CPU copy
                searcher = index if (index is self._index or kf <= 2048) else self._index
                scores, labels = searcher.search(q[todo], kf)
                if self.metric == "l2":
                    scores = -scores
                retry = []
                for row, qi in enumerate(todo):
                    lab = labels[row]
                    valid = lab >= 0
                    lab, sc = lab[valid], scores[row][valid]
                    alive = self._alive[lab]
                    lab, sc = lab[alive], sc[alive]
                    if excl[qi]:
                        cand = [self._slot_ids[s] for s in lab]
                        keep = np.fromiter((c not in excl[qi] for c in cand), dtype=bool, count=len(cand))
                        lab, sc = lab[keep], sc[keep]
                    if len(lab) < k and kf < total:
                        retry.append(qi)  # approximate indexes may return fewer than asked
                        continue
                    m = min(k, len(lab))
                    out_ids[qi, :m] = [self._slot_ids[s] for s in lab[:m]]
                    out_scores[qi, :m] = sc[:m]
                todo = np.array(retry, dtype=int)
                fetch[todo] = np.minimum(total, fetch[todo] * 2 + k)
        return out_ids, out_scores

    def search_by_id(self, item_id: str, k: int = 10, *, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to a stored item (itself excluded by default)."""
        vec = self.get_vectors([item_id])[0]
        return self.search(vec, k, exclude=[item_id] if exclude_self else None)

    # --------------------------------------------------------------- persistence
    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "factory": self.factory,
            "resolved_factory": self._resolved_factory,
            "metric": self.metric,
            "normalize": self.normalize,
            "nprobe": self.nprobe,
            "exact_threshold": self.exact_threshold,
            "rebuild_fraction": self.rebuild_fraction,
        }

    def save(self, directory: str | Path) -> Path:
        """Save atomically to ``directory`` (manifest.json, index.faiss, ids.npy, vectors.npy).

        The in-memory index is not modified: removed slots are compacted in a copy, and
        the file is always written from a CPU index.
        """
        faiss = _faiss()
        with self._lock:
            ids, vecs = self._alive_arrays()
            vecs = np.ascontiguousarray(vecs)
            if self._index is None:
                cpu = None
            elif len(ids) == self._index.ntotal:
                cpu = self._index
            else:
                cpu = faiss.clone_index(self._index)
                cpu.reset()
                cpu.add(vecs)
            ids_arr = np.array(ids, dtype=str) if ids else np.empty(0, dtype="<U1")
            config = self.config()

            def write(tmp: Path) -> None:
                files = ["ids.npy", "vectors.npy"]
                atomic_save_npy(tmp / "ids.npy", ids_arr)
                atomic_save_npy(tmp / "vectors.npy", vecs)
                if cpu is not None:
                    faiss.write_index(cpu, str(tmp / "index.faiss"))
                    files.append("index.faiss")
                write_manifest(tmp, kind=_KIND, files=files, config=config)

            return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, *, use_gpu: bool | str = "auto", verify: bool = True) -> "ItemIndex":
        """Load an index saved by :meth:`save`; checksums are verified unless ``verify=False``."""
        faiss = _faiss()
        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND, verify=verify)
        cfg = manifest["config"]
        try:
            index = cls(
                int(cfg["dim"]),
                factory=cfg["factory"],
                metric=cfg["metric"],
                normalize=bool(cfg["normalize"]),
                nprobe=cfg.get("nprobe"),
                exact_threshold=int(cfg["exact_threshold"]),
                rebuild_fraction=float(cfg["rebuild_fraction"]),
                use_gpu=use_gpu,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}/manifest.json has an invalid config: {exc}") from exc
        missing = {"ids.npy", "vectors.npy"} - set(manifest["files"])
        if missing:
            raise ArtifactError(f"{directory}/manifest.json does not list {sorted(missing)}: their checksums cannot be verified")
        ids = load_npy(directory / "ids.npy")
        vecs = load_npy(directory / "vectors.npy")
        if ids.ndim != 1 or vecs.ndim != 2 or len(ids) != len(vecs) or vecs.shape[1] != index.dim:
            raise ArtifactError(f"{directory}: ids {ids.shape} and vectors {vecs.shape} do not match dim {index.dim}")
        if "index.faiss" in manifest["files"]:
            cpu = faiss.read_index(str(directory / "index.faiss"))
            if cpu.ntotal != len(ids) or cpu.d != index.dim:
                raise ArtifactError(f"{directory}: index.faiss holds {cpu.ntotal} x {cpu.d}, ids.npy {len(ids)} x {index.dim}")
            index._index = cpu
            index._resolved_factory = cfg.get("resolved_factory")
            index._apply_nprobe(cpu)
        index._vectors = np.ascontiguousarray(vecs, dtype=np.float32)
        index._slot_ids = [str(i) for i in ids]
        index._alive = np.ones(len(ids), dtype=bool)
        index._slot_of = {item_id: s for s, item_id in enumerate(index._slot_ids)}
        if len(index._slot_of) != len(ids):
            raise ArtifactError(f"{directory}/ids.npy has duplicate ids")
        return index
