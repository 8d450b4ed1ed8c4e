"""The shared multimodal space: text, images and reviews of items as comparable vectors.

The space is the text encoder's space. Item text is encoded directly; images go through
the image encoder and a projection trained contrastively on the catalog's own (image,
text) pairs (or, with a CLIP model, straight into CLIP's joint space); reviews are
encoded as text and pooled per item, weighted by rating. The fused item vector is the
normalized weighted sum of whichever modalities an item has.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_save_npy, load_npy, read_manifest, save_directory, write_manifest
from recgen.catalog.data import CatalogData
from recgen.encoders.base import l2_normalize
from recgen.encoders.cache import EmbeddingCache, cached_encode, content_key, file_key
from recgen.encoders.projection import ImageProjection, ProjectionConfig
from recgen.errors import ArtifactError, NotFittedError
from recgen.ids import id_strings
from recgen.modalities import SOURCE_MODALITIES, default_fusion_weights

log = logging.getLogger(__name__)

MODALITIES = SOURCE_MODALITIES  # the vectors encoded from an item's own data (recgen.modalities)
_KIND = "multimodal-space"


@dataclass
class SpaceConfig:
    """How items are embedded.

    Attributes
    ----------
    text_model : str, optional
        Sentence-transformers model folder; None = bundled all-MiniLM-L6-v2.
    clip_model : str, optional
        A CLIP model (sentence-transformers format) used for both text and images; when
        set, ``text_model`` is ignored and no projection is trained.
    image_size : int
        Input size of the EfficientNet-Lite0 image encoder.
    fusion_weights : dict
        Weight of each modality in the fused vector.
    projection : ProjectionConfig
        Training settings of the image projection.
    batch_size : int
        Encoding batch size.
    device : str, optional
        Torch device; CUDA when available by default.
    """

    text_model: str | None = None
    clip_model: str | None = None
    image_size: int = 224
    fusion_weights: dict[str, float] = field(default_factory=default_fusion_weights)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    batch_size: int = 64
    device: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.projection, dict):
            self.projection = ProjectionConfig(**self.projection)
        unknown = set(self.fusion_weights) - set(MODALITIES)
        if unknown:
            raise ValueError(f"fusion_weights has unknown modalities {sorted(unknown)}; expected a subset of {MODALITIES}")
        if any((not np.isfinite(w)) or w < 0 for w in self.fusion_weights.values()):
            raise ValueError(f"fusion_weights must be finite and >= 0; got {self.fusion_weights}")


@dataclass
class ItemVectors:
    """Per-modality and fused vectors of a set of items.

    Attributes
    ----------
    ids : ndarray of str, shape (n,)
    vectors : dict[str, ndarray]
        ``"text"``, ``"image"``, ``"review"``, ``"fused"`` -> (n, dim) float32; rows of items
        lacking a modality are zero.
    present : dict[str, ndarray of bool]
        Which rows hold a real vector for each modality.
    """

    ids: np.ndarray
    vectors: dict[str, np.ndarray]
    present: dict[str, np.ndarray]

    @property
    def dim(self) -> int:
        return int(self.vectors["fused"].shape[1])

    def rows(self, ids) -> np.ndarray:
        """Row of each id in :attr:`ids` (``-1`` when unknown), as an int array.

        The id -> row hash table is built once per ``ids`` array (rebuilt when ``ids`` is
        replaced, e.g. by ``Recgen.update_items``), not on every call.
        """
        cached = self.__dict__.get("_row_index")
        if cached is None or cached[0] is not self.ids:
            cached = (self.ids, pd.Index(self.ids))
            self.__dict__["_row_index"] = cached
        return cached[1].get_indexer(ids)

    def modality(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the items that have modality ``name``."""
        if name not in self.vectors:
            raise KeyError(f"modality {name!r} not in {sorted(self.vectors)}")
        mask = self.present[name]
        return self.ids[mask], self.vectors[name][mask]

    def save(self, directory: Path) -> list[str]:
        """Write one ``.npy`` per array into ``directory`` (part of a larger artefact); returns the file names."""
        files = ["item_ids.npy"]
        atomic_save_npy(directory / "item_ids.npy", self.ids.astype(str))
        for m, arr in self.vectors.items():
            atomic_save_npy(directory / f"vec_{m}.npy", arr)
            atomic_save_npy(directory / f"has_{m}.npy", self.present[m])
            files += [f"vec_{m}.npy", f"has_{m}.npy"]
        return files

    @classmethod
    def load(cls, directory: Path, modalities: Sequence[str]) -> "ItemVectors":
        ids = load_npy(directory / "item_ids.npy").astype(object)
        vectors = {m: load_npy(directory / f"vec_{m}.npy") for m in modalities}
        present = {m: load_npy(directory / f"has_{m}.npy").astype(bool) for m in modalities}
        for m in modalities:
            if len(vectors[m]) != len(ids) or len(present[m]) != len(ids):
                raise ArtifactError(f"{directory}: vec_{m}.npy has {len(vectors[m])} rows, item_ids.npy {len(ids)}")
        return cls(ids=ids, vectors=vectors, present=present)


def item_text(title: Any, description: Any, attributes: Any) -> str:
    """The text recgen encodes for an item: title, description and ``key: value`` attributes."""
    parts = [str(title).strip()]
    if isinstance(description, str) and description.strip():
        parts.append(description.strip())
    if isinstance(attributes, dict) and attributes:
        parts.append("; ".join(f"{k}: {v}" for k, v in attributes.items() if v not in (None, "")))
    return ". ".join(p for p in parts if p)


_ENCODERS: dict[tuple, Any] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(key: tuple, make: "Callable[[], Any]") -> Any:
    """One loaded encoder per (kind, model, settings, device) in the process.

    Encoders are read-only after loading, so every space, model and test in a process can
    share the weights instead of loading (and holding) them again.
    """
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = make()
        return _ENCODERS[key]


class MultimodalSpace:
    """Encoders + image projection that put items, queries and images into one space.

    Parameters
    ----------
    config : SpaceConfig, optional

    Examples
    --------
    >>> space = MultimodalSpace()
    >>> vectors = space.fit(catalog)            # encodes, trains the projection
    >>> q = space.encode_text(["red striped mug"])  # same space as vectors.vectors["image"]
    """

    def __init__(self, config: SpaceConfig | None = None) -> None:
        self.config = config or SpaceConfig()
        self._text = None
        self._image = None
        self._clip = None
        self.projection: ImageProjection | None = None
        self.review_rating_range: tuple[float, float] = (1.0, 5.0)
        self.last_encoded: dict[str, int] = {}
        self._expected_text: tuple[str, str | None] | None = None  # (saved folder, encoder name) after load()

    def sibling(self) -> "MultimodalSpace":
        """An untrained space with the same config that shares this one's loaded encoders."""
        from copy import deepcopy

        other = MultimodalSpace(deepcopy(self.config))
        other._text, other._image, other._clip = self._text, self._image, self._clip
        return other

    # ----------------------------------------------------------------- encoders
    def _load_clip(self):
        if self._clip is None:
            from recgen.encoders.clip import ClipEncoder

            c = self.config
            self._clip = shared_encoder(("clip", str(c.clip_model), c.device),
                                        lambda: ClipEncoder(c.clip_model, device=c.device))
        return self._clip

    @property
    def text_encoder(self):
        """The text encoder (loaded on first use)."""
        if self.config.clip_model:
            return self._load_clip().text
        if self._text is None:
            from recgen.encoders.text import TextEncoder

            c = self.config
            text = shared_encoder(("text", str(c.text_model), c.device),
                                  lambda: TextEncoder(c.text_model, device=c.device))
            if self._expected_text is not None and text.name != self._expected_text[1]:
                raise ArtifactError(
                    f"{self._expected_text[0]} was built with text encoder {self._expected_text[1]!r}; now loaded "
                    f"{text.name!r}: vectors would not be comparable")
            self._text = text
        return self._text

    @property
    def image_encoder(self):
        """The image encoder (loaded on first use): CLIP's image tower or EfficientNet-Lite0 features."""
        if self.config.clip_model:
            return self._load_clip().image
        if self._image is None:
            from recgen.encoders.image import ImageFeatureEncoder

            c = self.config
            self._image = shared_encoder(("image", c.image_size, c.device),
                                         lambda: ImageFeatureEncoder(image_size=c.image_size, device=c.device))
        return self._image

    @property
    def dim(self) -> int:
        return self.text_encoder.dim

    @property
    def needs_projection(self) -> bool:
        return not self.config.clip_model

    # ---------------------------------------------------------------- encoding
    def encode_text(self, texts: Sequence[str], *, cache: EmbeddingCache | None = None) -> np.ndarray:
        """Texts (queries, descriptions, reviews) -> (n, dim) unit vectors in the shared space."""
        enc = self.text_encoder
        texts = list(texts)
        vecs, n = cached_encode(lambda b: enc.encode(b, batch_size=self.config.batch_size), enc.name, texts,
                                [content_key(t) for t in texts], enc.dim, cache=cache)
        self.last_encoded["text"] = self.last_encoded.get("text", 0) + n
        return vecs

    def image_features(self, images: Sequence[Any], *, keys: Sequence[str] | None = None,
                       cache: EmbeddingCache | None = None) -> np.ndarray:
        """Raw image-encoder features (before projection); ``keys`` enable caching."""
        enc = self.image_encoder
        images = list(images)
        if keys is None:
            feats = enc.encode(images, batch_size=self.config.batch_size)
            n = len(images)
        else:
            feats, n = cached_encode(lambda b: enc.encode(b, batch_size=self.config.batch_size), enc.name, images,
                                     list(keys), enc.dim, cache=cache)
        self.last_encoded["image"] = self.last_encoded.get("image", 0) + n
        return feats

    def project_images(self, features: np.ndarray) -> np.ndarray:
        """Map image-encoder features into the shared space."""
        if not self.needs_projection:
            return l2_normalize(features)
        if self.projection is None:
            raise NotFittedError("the image projection is not trained: call fit() (or load a saved space) first")
        return self.projection.transform(features)

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        """Images (paths, bytes, PIL) -> (n, dim) unit vectors in the shared space."""
        return self.project_images(self.image_features(images))

    # ---------------------------------------------------------------- items
    def _encode_catalog(self, catalog: CatalogData, cache: EmbeddingCache | None, progress: bool):
        items = catalog.items.reset_index(drop=True)
        ids = np.asarray(id_strings(items["item_id"]), dtype=object)
        n = len(ids)
        steps = _Progress(progress, total=3)
        texts = [item_text(t, d, a) for t, d, a in zip(items["title"], items["description"], items["attributes"])]
        text_vecs = self.encode_text(texts, cache=cache)
        steps.update("text")

        has_image = items["image_path"].map(lambda p: isinstance(p, str) and bool(p)).to_numpy(dtype=bool).copy()
        feats = np.zeros((n, self.image_encoder.dim), dtype=np.float32)
        rows = np.flatnonzero(has_image)
        if len(rows):
            paths = items["image_path"].to_numpy(dtype=object)[rows].tolist()
            if "image_sha256" in items.columns:
                keys = [k if isinstance(k, str) and k else file_key(p)
                        for k, p in zip(items["image_sha256"].to_numpy(dtype=object)[rows], paths)]
            else:
                keys = [file_key(p) for p in paths]
            ok_rows, ok_paths, ok_keys = self._readable(rows, paths, keys)
            if len(ok_rows):
                feats[ok_rows] = self.image_features(ok_paths, keys=ok_keys, cache=cache)
            has_image[:] = False
            has_image[ok_rows] = True
        steps.update("images")

        review_vecs, has_review = self._review_vectors(ids, catalog.reviews, cache)
        steps.update("reviews")
        steps.close()
        return ids, text_vecs, feats, has_image, review_vecs, has_review

    @staticmethod
    def _readable(rows: np.ndarray, paths: list[str], keys: list[str]):
        """Drop (with a warning naming them) images that vanished since ingest."""
        import os

        ok = [i for i, p in enumerate(paths) if os.path.isfile(p)]
        if len(ok) < len(paths):
            gone = [paths[i] for i in range(len(paths)) if i not in set(ok)]
            log.warning("%d item images are missing and were skipped, e.g. %s", len(gone), gone[:3])
        return rows[ok], [paths[i] for i in ok], [keys[i] for i in ok]

    def _review_vectors(self, ids: np.ndarray, reviews: pd.DataFrame, cache):
        dim = self.dim
        out = np.zeros((len(ids), dim), dtype=np.float32)
        has = np.zeros(len(ids), dtype=bool)
        if reviews is None or not len(reviews):
            return out, has
        row_of = pd.Index(ids).get_indexer(id_strings(reviews["item_id"]))
        keep = row_of >= 0
        texts = reviews["text"].astype(str).to_numpy(dtype=object)[keep].tolist()
        if not texts:
            return out, has
        vecs = self.encode_text(texts, cache=cache)
        ratings = pd.to_numeric(reviews["rating"], errors="coerce").to_numpy(dtype=float)[keep]
        lo, hi = self.review_rating_range
        # rating-aware pooling: praise counts up to 3x more than a pan; unrated reviews get the middle weight
        w = np.where(np.isfinite(ratings), 0.5 + np.clip((ratings - lo) / max(hi - lo, 1e-9), 0, 1), 1.0)
        np.add.at(out, row_of[keep], vecs * w[:, None].astype(np.float32))
        has[np.unique(row_of[keep])] = True
        out[has] = l2_normalize(out[has])
        return out, has

    def _fuse(self, ids, text_vecs, image_vecs, has_image, review_vecs, has_review) -> ItemVectors:
        w = self.config.fusion_weights
        has_text = np.ones(len(ids), dtype=bool)
        fused = (w.get("text", 0) * text_vecs + w.get("image", 0) * image_vecs * has_image[:, None]
                 + w.get("review", 0) * review_vecs * has_review[:, None])
        empty = np.linalg.norm(fused, axis=1) == 0
        fused[empty] = text_vecs[empty]  # all weights zero for this item's modalities: fall back to text
        return ItemVectors(
            ids=ids,
            vectors={"text": text_vecs, "image": image_vecs, "review": review_vecs, "fused": l2_normalize(fused)},
            present={"text": has_text, "image": has_image, "review": has_review, "fused": has_text.copy()},
        )

    def fit(self, catalog: CatalogData, *, cache: EmbeddingCache | None = None, progress: bool = False,
            train_item_ids: Sequence[str] | None = None) -> ItemVectors:
        """Encode the catalog, train the image projection on its (image, text) pairs, and fuse.

        Parameters
        ----------
        catalog : CatalogData
            Validated catalog (e.g. ``CatalogStore.catalog()``).
        cache : EmbeddingCache, optional
            Content-addressed cache: unchanged texts and images are not re-encoded.
        progress : bool
            Show progress bars.
        train_item_ids : sequence of str, optional
            Train the projection on these items only (to evaluate on held-out items).

        Returns
        -------
        ItemVectors
        """
        self._set_rating_range(catalog.reviews)
        ids, text_vecs, feats, has_image, review_vecs, has_review = self._encode_catalog(catalog, cache, progress)
        if self.needs_projection:
            train = has_image.copy()
            if train_item_ids is not None:
                train &= pd.Index(ids).isin(pd.Index([str(i) for i in train_item_ids]))
            if train.sum() >= 4:
                self.projection = ImageProjection(feats.shape[1], self.dim, self.config.projection)
                self.projection.fit(feats[train], text_vecs[train], show_progress=progress)
            else:
                log.warning("only %d items have images: no image projection trained, image vectors left out",
                            int(train.sum()))
                self.projection = None
                has_image[:] = False
        image_vecs = np.zeros_like(text_vecs)
        if has_image.any():
            image_vecs[has_image] = self.project_images(feats[has_image])
        return self._fuse(ids, text_vecs, image_vecs, has_image, review_vecs, has_review)

    def transform(self, catalog: CatalogData, *, cache: EmbeddingCache | None = None, progress: bool = False) -> ItemVectors:
        """Embed items with the already-trained projection (new or changed items)."""
        ids, text_vecs, feats, has_image, review_vecs, has_review = self._encode_catalog(catalog, cache, progress)
        if self.needs_projection and self.projection is None:
            has_image[:] = False
        image_vecs = np.zeros_like(text_vecs)
        if has_image.any():
            image_vecs[has_image] = self.project_images(feats[has_image])
        return self._fuse(ids, text_vecs, image_vecs, has_image, review_vecs, has_review)

    def _set_rating_range(self, reviews: pd.DataFrame | None) -> None:
        if reviews is not None and len(reviews):
            r = pd.to_numeric(reviews["rating"], errors="coerce")
            r = r[np.isfinite(r)]
            if len(r) and r.max() > r.min():
                self.review_rating_range = (float(r.min()), float(r.max()))

    # ------------------------------------------------------------- persistence
    def config_dict(self) -> dict[str, Any]:
        return {"space": asdict(self.config), "review_rating_range": list(self.review_rating_range),
                "text_encoder": self.text_encoder.name, "image_encoder": self.image_encoder.name, "dim": self.dim}

    def save(self, directory: str | Path) -> Path:
        """Save config and projection weights atomically (encoders come from installed packages)."""
        cfg = self.config_dict()
        projection = self.projection

        def write(tmp: Path) -> None:
            files = []
            if projection is not None:
                projection.save(tmp / "projection")
                files.append("projection/manifest.json")
            write_manifest(tmp, kind=_KIND, files=files, config=cfg)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = None, verify: bool = True) -> "MultimodalSpace":
        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND, verify=verify)
        cfg = manifest["config"]
        try:
            space_cfg = SpaceConfig(**cfg["space"])
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{directory}: invalid space config: {exc}") from exc
        if device is not None:
            space_cfg.device = device
        space = cls(space_cfg)
        space.review_rating_range = tuple(cfg.get("review_rating_range", (1.0, 5.0)))
        if (directory / "projection").is_dir():
            space.projection = ImageProjection.load(directory / "projection", verify=verify)
        # checked when the text encoder is first loaded (recommending, enriching and serving
        # from stored vectors never need it, and loading it costs seconds)
        space._expected_text = (str(directory), cfg.get("text_encoder"))
        return space


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="embedding", unit="step")

    def update(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(what)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
