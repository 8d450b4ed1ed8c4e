"""``Recgen``: the fitted whole — shared space, item indexes, user profiles — behind one object."""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recgen._io import load_consistent, read_manifest, save_directory, write_manifest
from recgen.catalog.data import CatalogData
from recgen.encoders.cache import EmbeddingCache
from recgen.encoders.space import ItemVectors, MultimodalSpace, SpaceConfig
from recgen.features import FEATURE_MODALITIES, enrich_candidates
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError
from recgen.index.item_index import ItemIndex
from recgen.modalities import VECTOR_MODALITIES
from recgen.profiles import ProfileConfig, UserProfiles

log = logging.getLogger(__name__)

_KIND = "recgen-model"
#: One FAISS index per vector modality the catalog has.
INDEX_MODALITIES = VECTOR_MODALITIES


def _writer(method):
    """Run a method that changes (or snapshots) the model under the model's writer lock."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._write_lock:
            return method(self, *args, **kwargs)

    return locked


class Recgen:
    """Multimodal item space + FAISS indexes + user profiles, fitted on one catalog.

    Parameters
    ----------
    space : SpaceConfig, optional
        Encoders, fusion weights and projection training (see :class:`SpaceConfig`).
    profiles : ProfileConfig, optional
        How histories become taste vectors.
    index_factory : str, default "auto"
        FAISS factory string for the item indexes; ``"auto"`` is exact below 20k items.
    use_gpu : {"auto", True, False}
        Search on GPU when faiss-gpu and a GPU are present.

    Examples
    --------
    >>> from recgen import Recgen, CatalogStore
    >>> model = Recgen().fit(CatalogStore("shop.db"))
    >>> ids, scores = model.recommend("U0001", k=10)
    >>> ids, scores = model.search_text("red striped mug", k=5, modality="image")
    >>> enriched = model.enrich(candidates_df)
    >>> model.save("models/shop")
    """

    def __init__(self, *, space: SpaceConfig | None = None, profiles: ProfileConfig | None = None,
                 index_factory: str = "auto", use_gpu: bool | str = "auto") -> None:
        self.space = MultimodalSpace(space)
        self.profile_config = profiles or ProfileConfig()
        self.index_factory = index_factory
        self.use_gpu = use_gpu
        self.items: ItemVectors | None = None
        self.profiles: UserProfiles | None = None
        self.indexes: dict[str, ItemIndex] = {}
        self.fit_info: dict[str, Any] = {}
        # one writer at a time (update_items, remove_items, save); readers take no lock
        self._write_lock = threading.RLock()

    # ------------------------------------------------------------------ fitting
    def fit(self, catalog: "CatalogData | Any", *, cache: EmbeddingCache | None = None, progress: bool = False,
            train_item_ids: Sequence[str] | None = None) -> "Recgen":
        """Embed the catalog, train the image projection, build the indexes and the profiles.

        Parameters
        ----------
        catalog : CatalogData or CatalogStore
            With a store, its catalog is read and its database doubles as the embedding
            cache (unless ``cache`` is given).
        cache : EmbeddingCache, optional
            Unchanged texts/images are not re-encoded.
        progress : bool
            Progress bars.
        train_item_ids : sequence of str, optional
            Train the projection on these items only (held-out evaluation).

        Returns
        -------
        self
        """
        catalog, cache = _resolve_catalog(catalog, cache)
        if not len(catalog.items):
            raise ValueError("catalog has no items: ingest items before fitting")
        self.space.last_encoded = {}
        self.items = self.space.fit(catalog, cache=cache, progress=progress, train_item_ids=train_item_ids)
        self._build_indexes()
        self.profiles = UserProfiles(self.profile_config).fit(catalog.interactions, self.items)
        self.fit_info = {
            "n_items": int(len(self.items.ids)),
            "n_users": int(len(self.profiles)),
            "encoded": dict(self.space.last_encoded),
            "with_image": int(self.items.present["image"].sum()),
            "with_reviews": int(self.items.present["review"].sum()),
        }
        log.info("fitted recgen: %s", self.fit_info)
        return self

    def _build_indexes(self) -> None:
        self.indexes = {}
        for m in INDEX_MODALITIES:
            ids, vecs = self.items.modality(m)
            if len(ids):
                self.indexes[m] = ItemIndex.build(list(ids), vecs, factory=self.index_factory, use_gpu=self.use_gpu)

    @_writer
    def update_items(self, catalog: "CatalogData | Any", *, cache: EmbeddingCache | None = None) -> int:
        """Embed new or changed items with the trained space and upsert them into every index.

        User profiles are not refitted (call :meth:`fit` for that). Returns the number of
        items embedded.

        Safe while other threads read the model: the item arrays are never changed in place
        (a new :class:`ItemVectors` replaces the old one in one assignment, so a reader sees
        the old or the new one whole), each index is changed under its own lock, and the new
        items are published before the indexes can return them.
        """
        self._check()
        catalog, cache = _resolve_catalog(catalog, cache)
        new = self.space.transform(catalog, cache=cache)
        cur = self.items
        pos = pd.Index(cur.ids).get_indexer(new.ids)
        old, fresh = pos >= 0, pos < 0
        n, n_fresh = len(cur.ids), int(fresh.sum())
        vectors, present = {}, {}
        for m in cur.vectors:  # copy-on-write, one copy: readers keep the old arrays
            v = np.empty((n + n_fresh, cur.vectors[m].shape[1]), dtype=cur.vectors[m].dtype)
            v[:n] = cur.vectors[m]
            v[pos[old]] = new.vectors[m][old]
            v[n:] = new.vectors[m][fresh]
            p = np.concatenate([cur.present[m], new.present[m][fresh]])
            p[pos[old]] = new.present[m][old]
            vectors[m], present[m] = v, p
        self.items = ItemVectors(ids=np.concatenate([cur.ids, new.ids[fresh]]), vectors=vectors, present=present)
        for m in INDEX_MODALITIES:
            has = new.present[m]
            if m in self.indexes:
                self.indexes[m].upsert(list(new.ids[has]), new.vectors[m][has])
                gone = [i for i in new.ids[~has] if i in self.indexes[m]]
                if gone:
                    self.indexes[m].remove(gone)
            elif has.any():
                ids, vecs = self.items.modality(m)
                self.indexes[m] = ItemIndex.build(list(ids), vecs, factory=self.index_factory, use_gpu=self.use_gpu)
        return len(new.ids)

    @_writer
    def remove_items(self, item_ids: Sequence[str]) -> None:
        """Remove items from every index (they are no longer recommended or returned).

        Safe while other threads read the model: the indexes drop the items first, then a new
        :class:`ItemVectors` without them replaces the old one in one assignment.
        """
        self._check()
        item_ids = [str(i) for i in item_ids]
        unknown = [i for i in item_ids if i not in self.indexes["fused"]]
        if unknown:
            raise UnknownIdError(f"{len(unknown)} item ids are not in the model, e.g. {unknown[:5]}; nothing removed")
        for index in self.indexes.values():
            present = [i for i in item_ids if i in index]
            if present:
                index.remove(present)
        keep = ~pd.Index(self.items.ids).isin(item_ids)
        self.items = ItemVectors(ids=self.items.ids[keep],
                                 vectors={m: v[keep] for m, v in self.items.vectors.items()},
                                 present={m: p[keep] for m, p in self.items.present.items()})

    # --------------------------------------------------------------- retrieval
    def _check(self) -> None:
        if self.items is None or self.profiles is None:
            raise NotFittedError("Recgen is not fitted: call fit(catalog) or Recgen.load(directory) first")

    def _index(self, modality: str) -> ItemIndex:
        self._check()
        if modality not in INDEX_MODALITIES:
            raise ValueError(f"modality must be one of {INDEX_MODALITIES}; got {modality!r}")
        if modality not in self.indexes:
            raise ValueError(f"no item has a {modality!r} vector in this catalog; use modality='fused' or 'text'")
        return self.indexes[modality]

    def recommend(self, user_id: str, k: int = 10, *, exclude_seen: bool = True,
                  history: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for a user by content similarity to their taste.

        Parameters
        ----------
        user_id : str
            A user of the fitted interactions (ignored when ``history`` is given).
        k : int
        exclude_seen : bool, default True
            Never return items the user already interacted with.
        history : sequence of str, optional
            Item ids for a user unknown at fit time (session / cold-start user).

        Returns
        -------
        ids : ndarray of str, shape (<= k,)
        scores : ndarray of float32
            Cosine similarity to the taste (or interest) vector, best first.

        Notes
        -----
        Items without any interactions (cold-start items) are ranked like every other
        item: only their content matters.
        """
        self._check()
        if history is not None:
            known = [str(i) for i in history if str(i) in self.indexes["fused"]]
            if not known:
                raise UnknownIdError(f"none of the {len(history)} history items is in the model")
            queries = self.indexes["fused"].get_vectors(known).mean(axis=0, keepdims=True)
            seen = known
        else:
            queries = self.profiles.interests(user_id)
            seen = self.profiles.seen(user_id).tolist()
        if not np.linalg.norm(queries, axis=1).all():
            raise ValueError(f"user {user_id!r} has no history item with a vector in this model; pass history=")
        exclude = seen if exclude_seen else None
        index = self._index("fused")
        if len(queries) == 1:
            return index.search(queries[0], k, exclude=exclude)
        ids, scores = index.search_batch(queries, k, exclude=[exclude] * len(queries))
        return _interleave(ids, scores, k)

    def recommend_batch(self, user_ids: Sequence[str], k: int = 10, *, exclude_seen: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` (single taste vector) for many users in one FAISS call.

        Returns
        -------
        ids : ndarray of str (object), shape (n_users, k); ``""`` pads short rows
        scores : ndarray of float32, shape (n_users, k); ``-inf`` pads
        """
        self._check()
        rows = self.profiles.rows(list(user_ids))
        if (rows < 0).any():
            bad = [u for u, r in zip(user_ids, rows) if r < 0]
            raise UnknownIdError(f"{len(bad)} users are unknown, e.g. {bad[:5]}")
        queries = self.profiles.vectors_["fused"][rows]
        exclude = [self.profiles.seen(u).tolist() for u in user_ids] if exclude_seen else None
        return self._index("fused").search_batch(queries, k, exclude=exclude)

    def similar_items(self, item_id: str, k: int = 10, *, modality: str = "fused") -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to ``item_id`` in ``modality`` (itself excluded)."""
        index = self._index(modality)
        if item_id not in index:
            raise UnknownIdError(f"item_id {item_id!r} has no {modality!r} vector in the model")
        return index.search_by_id(item_id, k)

    def search_text(self, query: str, k: int = 10, *, modality: str = "fused") -> tuple[np.ndarray, np.ndarray]:
        """Items matching a text query. ``modality="image"`` finds items by their pictures."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string; got {query!r}")
        q = self.space.encode_text([query])[0]
        return self._index(modality).search(q, k)

    def search_image(self, image: Any, k: int = 10, *, modality: str = "fused") -> tuple[np.ndarray, np.ndarray]:
        """Items matching an image (path, bytes or PIL). ``modality="text"`` finds items by their descriptions."""
        q = self.space.encode_images([image])[0]
        return self._index(modality).search(q, k)

    def enrich(self, candidates: pd.DataFrame, *, user_col: str = "user_id", item_col: str = "item_id",
               prefix: str = "recgen_", modalities: Sequence[str] = FEATURE_MODALITIES) -> pd.DataFrame:
        """Add similarity features to a candidate frame; see :func:`recgen.features.enrich_candidates`."""
        self._check()
        return enrich_candidates(candidates, items=self.items, profiles=self.profiles, user_col=user_col,
                                 item_col=item_col, prefix=prefix, modalities=modalities)

    # ------------------------------------------------------------- persistence
    @_writer
    def save(self, directory: str | Path) -> Path:
        """Save everything atomically to ``directory`` (replacing a previous save only when complete)."""
        self._check()
        config = {
            "profiles": asdict(self.profile_config),
            "index_factory": self.index_factory,
            "modalities": list(self.items.vectors),
            "indexes": list(self.indexes),
            "fit_info": self.fit_info,
        }

        def write(tmp: Path) -> None:
            self.space.save(tmp / "space")
            files = ["space/manifest.json"]
            for m, index in self.indexes.items():
                index.save(tmp / f"index_{m}")
                files.append(f"index_{m}/manifest.json")
            files += self.items.save(tmp)
            files += self.profiles.save_arrays(tmp)
            write_manifest(tmp, kind=_KIND, files=files, config=config)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, *, use_gpu: bool | str = "auto", device: str | None = None,
             verify: bool = True) -> "Recgen":
        """Load a model saved by :meth:`save`. Every file is checked against the manifest's checksums.

        A save that swaps a new version in while this reads is noticed (the manifest changed)
        and the load starts again, so the result never mixes files of two versions.
        """
        directory = Path(directory)
        return load_consistent(directory, lambda: cls._load_once(directory, use_gpu=use_gpu, device=device,
                                                                  verify=verify))

    @classmethod
    def _load_once(cls, directory: Path, *, use_gpu: bool | str, device: str | None, verify: bool) -> "Recgen":
        manifest = read_manifest(directory, kind=_KIND, verify=verify)
        cfg = manifest["config"]
        try:
            model = cls(profiles=ProfileConfig(**cfg["profiles"]), index_factory=cfg["index_factory"], use_gpu=use_gpu)
            modalities = list(cfg["modalities"])
            index_names = list(cfg["indexes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}/manifest.json has an invalid config: {exc}") from exc
        # these names become file names: only the closed set of modalities, checked before any path
        for field, names in (("modalities", modalities), ("indexes", index_names)):
            bad = [n for n in names if not isinstance(n, str) or n not in VECTOR_MODALITIES]
            if bad or len(set(names)) != len(names):
                raise ArtifactError(f"{directory}/manifest.json: config {field} must be distinct names from "
                                    f"{list(VECTOR_MODALITIES)}; got {names!r}")
        model.space = MultimodalSpace.load(directory / "space", device=device, verify=verify)
        model.items = ItemVectors.load(directory, modalities)
        model.profiles = UserProfiles.load_arrays(directory, model.profile_config, modalities)
        model.indexes = {m: ItemIndex.load(directory / f"index_{m}", use_gpu=use_gpu, verify=verify) for m in index_names}
        model.fit_info = cfg.get("fit_info", {})
        return model


def _resolve_catalog(catalog: Any, cache: EmbeddingCache | None) -> tuple[CatalogData, EmbeddingCache | None]:
    if isinstance(catalog, CatalogData):
        return catalog, cache
    if hasattr(catalog, "catalog") and hasattr(catalog, "engine"):  # a CatalogStore
        return catalog.catalog(), cache if cache is not None else EmbeddingCache(catalog.engine)
    raise TypeError(f"catalog must be a CatalogData or a CatalogStore; got {type(catalog).__name__}")


def _interleave(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-interest ranked lists: rank 1 of every interest, then rank 2, ... without duplicates."""
    out_ids, out_scores, seen = [], [], set()
    for col in range(ids.shape[1]):
        for row in np.argsort(-scores[:, col], kind="stable"):
            i = ids[row, col]
            if i and i not in seen:
                seen.add(i)
                out_ids.append(i)
                out_scores.append(scores[row, col])
                if len(out_ids) == k:
                    return np.array(out_ids, dtype=object), np.array(out_scores, dtype=np.float32)
    return np.array(out_ids, dtype=object), np.array(out_scores, dtype=np.float32)
