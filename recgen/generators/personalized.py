"""``ContentGenerator``: personalized preview images and blurbs for (user, item) pairs.

Ties a fitted :class:`~recgen.model.Recgen` (item vectors, user taste vectors) to one image
generator and one blurb generator from the registry, trains them on the catalog, and
serves ``generate(user_ids, item_ids, seed=...)`` in batches with a content-addressed cache.

Personalization of previews. The decoder sees the item's vectors and the taste vector of
a user who interacted with the item. Because an item's own vectors already determine its
picture, a decoder trained only on full conditions learns to ignore the user; so during
training the item condition is dropped for a share of the pairs (``cond_dropout``), which
forces the decoder to learn what a taste looks like, and at generation the user's effect
is scaled like classifier-free guidance: ``x = x_neutral + user_guidance * (x_user - x_neutral)``
with the same latent sample for both.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recgen._io import read_manifest, save_directory, write_manifest
from recgen.catalog.data import CatalogData
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError
from recgen.modalities import FUSED, SOURCE_MODALITIES
from recgen.generators.base import png_array, png_bytes
from recgen.generators import BLURB_GENERATORS, IMAGE_GENERATORS, REGISTRY, config_class, make_generator

log = logging.getLogger(__name__)

_KIND = "content-generator"


@dataclass
class GenerationConfig:
    """Which generators to train and how.

    Attributes
    ----------
    image_generator : {"cvae", "cgan"} or None
        None skips previews.
    blurb_generator : {"grounded", "peter"} or None
        None skips blurbs.
    image_overrides, blurb_overrides : dict
        Config fields passed to the generators (e.g. ``{"epochs": 20, "image_size": 64}``).
    pairs_per_item : int
        Training pairs (item image, interacting user's taste) per item, plus one neutral pair.
    cond_dropout : float
        Share of training pairs whose item condition is zeroed (see module docstring).
    user_guidance : float
        Scale of the user's effect at generation (1 = as learned, 0 = neutral preview).
    seed : int
    """

    image_generator: str | None = "cvae"
    blurb_generator: str | None = "grounded"
    image_overrides: dict[str, Any] = field(default_factory=dict)
    blurb_overrides: dict[str, Any] = field(default_factory=dict)
    pairs_per_item: int = 4
    cond_dropout: float = 0.3
    user_guidance: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_generator is not None and self.image_generator not in IMAGE_GENERATORS:
            raise ValueError(f"image_generator must be one of {IMAGE_GENERATORS} or None; got {self.image_generator!r}")
        if self.blurb_generator is not None and self.blurb_generator not in BLURB_GENERATORS:
            raise ValueError(f"blurb_generator must be one of {BLURB_GENERATORS} or None; got {self.blurb_generator!r}")
        if not 0 <= self.cond_dropout < 1:
            raise ValueError(f"cond_dropout must be in [0, 1); got {self.cond_dropout}")
        if self.pairs_per_item < 1:
            raise ValueError(f"pairs_per_item must be >= 1; got {self.pairs_per_item}")


@dataclass
class GenerationOutput:
    """Previews and blurbs for the requested pairs, in request order.

    Attributes
    ----------
    user_ids, item_ids : list of str
    images : ndarray of uint8, shape (n, H, W, 3), or None when previews are off
    blurbs : list of str, or None when blurbs are off
    sources : list of list of str
        Provenance of each blurb sentence (grounded generator), else empty lists.
    from_cache : ndarray of bool, shape (n,)
        Which pairs were served from the cache (both parts).
    """

    user_ids: list[str]
    item_ids: list[str]
    images: np.ndarray | None
    blurbs: list[str] | None
    sources: list[list[str]]
    from_cache: np.ndarray


class GenerationCache:
    """Generated content keyed by a content hash of (generator version, item vectors, user vector, seed).

    Any change to the item (its vectors change), to the user's taste, or to the generator
    (a refit gets a new version id) changes the key, so stale content is never served.
    """

    _meta = sa.MetaData()
    _table = sa.Table("generation_cache", _meta,
                      sa.Column("key", sa.String(64), primary_key=True),
                      sa.Column("kind", sa.String(16), nullable=False),
                      sa.Column("payload", sa.LargeBinary, nullable=False))

    def __init__(self, engine_or_url: sa.Engine | str) -> None:
        if isinstance(engine_or_url, sa.Engine):
            self.engine = engine_or_url
        else:
            url = str(engine_or_url)
            self.engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
        self._meta.create_all(self.engine)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        keys = list(dict.fromkeys(keys))
        with self.engine.connect() as conn:
            for s in range(0, len(keys), 500):
                rows = conn.execute(sa.select(self._table.c.key, self._table.c.payload)
                                    .where(self._table.c.key.in_(keys[s:s + 500])))
                out.update({k: p for k, p in rows})
        return out

    def put_many(self, kind: str, items: dict[str, bytes]) -> None:
        if not items:
            return
        with self.engine.begin() as conn:
            existing = set()
            keys = list(items)
            for s in range(0, len(keys), 500):
                existing.update(conn.execute(sa.select(self._table.c.key)
                                             .where(self._table.c.key.in_(keys[s:s + 500]))).scalars())
            rows = [{"key": k, "kind": kind, "payload": v} for k, v in items.items() if k not in existing]
            for s in range(0, len(rows), 500):
                conn.execute(self._table.insert(), rows[s:s + 500])


def _make(name: str, overrides: dict[str, Any], seed: int):
    from dataclasses import fields

    has_seed = "seed" in {f.name for f in fields(config_class(name))}
    return make_generator(name, **{**({"seed": seed} if has_seed else {}), **overrides})


class ContentGenerator:
    """Personalized previews and blurbs on top of a fitted :class:`~recgen.model.Recgen`.

    Examples
    --------
    >>> gen = ContentGenerator(GenerationConfig(image_generator="cgan")).fit(model, catalog, progress=True)
    >>> out = gen.generate(["U0001", "U0002"], ["SKU-0042", "SKU-0007"], seed=0)
    >>> out.images.shape, out.blurbs[0]
    """

    def __init__(self, config: GenerationConfig | None = None) -> None:
        self.config = config or GenerationConfig()
        self.image_gen = None
        self.blurb_gen = None
        self.model = None
        self.version: str | None = None

    # ------------------------------------------------------------------ helpers
    def _item_cond(self, rows: np.ndarray) -> np.ndarray:
        v = self.model.items.vectors
        return np.concatenate([v["text"][rows], v["fused"][rows]], axis=1).astype(np.float32)

    def _item_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        rows = self.model.items.rows([str(i) for i in item_ids])
        if (rows < 0).any():
            bad = [i for i, r in zip(item_ids, rows) if r < 0]
            raise UnknownIdError(f"{len(bad)} item ids are not in the model, e.g. {bad[:5]}")
        return rows

    def _user_vecs(self, user_ids: Sequence[str | None]) -> np.ndarray:
        """Taste vectors; ``None`` (or an unknown user) gives the neutral zero vector."""
        dim = self.model.items.dim
        out = np.zeros((len(user_ids), dim), dtype=np.float32)
        known = [u is not None for u in user_ids]
        if any(known):
            rows = self.model.profiles.rows([u for u in user_ids if u is not None])
            idx = np.flatnonzero(known)
            ok = rows >= 0
            out[idx[ok]] = self.model.profiles.vectors_["fused"][rows[ok]]
        return out

    # ---------------------------------------------------------------------- fit
    def fit(self, model, catalog: CatalogData, *, progress: bool = False) -> "ContentGenerator":
        """Train the configured generators on ``catalog`` (the one ``model`` was fitted on).

        Parameters
        ----------
        model : Recgen
            Fitted model: its item vectors and user profiles are the conditions.
        catalog : CatalogData
            Items (with image paths), reviews and interactions.
        progress : bool
        """
        model._check()
        self.model = model
        c = self.config
        rng = np.random.default_rng(c.seed)
        if c.image_generator:
            self.image_gen = _make(c.image_generator, c.image_overrides, c.seed)
            images, item_cond, user_cond = self._image_training_set(catalog, rng)
            log.info("training %s on %d (image, item, user) pairs", c.image_generator, len(images))
            self.image_gen.fit(images, item_cond, user_cond, progress=progress)
        if c.blurb_generator:
            self.blurb_gen = _make(c.blurb_generator, c.blurb_overrides, c.seed)
            self._fit_blurbs(catalog, progress)
        self.version = uuid.uuid4().hex
        return self

    def _image_training_set(self, catalog: CatalogData, rng):
        from recgen.encoders.image import load_image

        size = self.image_gen.config.image_size
        items = catalog.items
        path_of = {i: p for i, p in zip(items["item_id"].astype(str), items["image_path"])
                   if isinstance(p, str) and p}
        # train on the catalog's items only (a held-out item may be in the model but not here)
        has = self.model.items.present["image"] & pd.Index(self.model.items.ids).isin(list(path_of))
        rows = np.flatnonzero(has)
        if not len(rows):
            raise ValueError("no item of the catalog has an image: the preview generator needs item images to learn from")
        pixels = []
        for r in rows:
            img = load_image(path_of[self.model.items.ids[r]]).resize((size, size))
            pixels.append(np.asarray(img, dtype=np.uint8))
        pixels = np.stack(pixels)
        users_of = (catalog.interactions.assign(item_id=catalog.interactions["item_id"].astype(str))
                    .groupby("item_id")["user_id"].agg(list))
        img_idx, cond_rows, users = [], [], []
        for j, r in enumerate(rows):
            item_id = self.model.items.ids[r]
            cands = list(dict.fromkeys(users_of.get(item_id, [])))
            pick = rng.permutation(len(cands))[: self.config.pairs_per_item]
            for u in [None] + [cands[p] for p in pick]:
                img_idx.append(j)
                cond_rows.append(r)
                users.append(u)
        item_cond = self._item_cond(np.asarray(cond_rows))
        user_cond = self._user_vecs(users)
        drop = rng.random(len(item_cond)) < self.config.cond_dropout
        drop &= np.array([u is not None for u in users])  # keep neutral pairs fully conditioned
        item_cond[drop] = 0.0
        return pixels[np.asarray(img_idx)], item_cond, user_cond

    def _fit_blurbs(self, catalog: CatalogData, progress: bool) -> None:
        name = self.config.blurb_generator
        if name == "grounded":
            self.blurb_gen.fit(catalog.items, catalog.reviews, encode=self.model.space.encode_text)
            return
        # peter: one training text per review, conditioned on (reviewer taste or neutral, item vector)
        reviews = catalog.reviews
        if reviews is None or not len(reviews):
            texts = [str(d) for d in catalog.items["description"]]
            item_ids = catalog.items["item_id"].astype(str).tolist()
            users = [None] * len(texts)
        else:
            texts = reviews["text"].astype(str).tolist()
            item_ids = reviews["item_id"].astype(str).tolist()
            users = [u if isinstance(u, str) and u else None for u in reviews["user_id"]]
        rows = self.model.items.rows(item_ids)
        keep = rows >= 0
        self.blurb_gen.fit([t for t, k in zip(texts, keep) if k], self._user_vecs([u for u, k in zip(users, keep) if k]),
                           self.model.items.vectors["fused"][rows[keep]], progress=progress)

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self.model is None or (self.image_gen is None and self.blurb_gen is None):
            raise NotFittedError("ContentGenerator is not fitted: call fit(model, catalog) or load() first")

    def _keys(self, kind: str, item_ids: Sequence[str], rows: np.ndarray, user_vecs: np.ndarray, seed: int,
              guidance: float) -> list[str]:
        v = self.model.items.vectors
        keys = []
        for item_id, r, u in zip(item_ids, rows, user_vecs):
            # v2: previews are seeded per (seed, item id), so the id is part of the key
            h = hashlib.sha256(f"v2|{kind}|{self.version}|{seed}|{guidance}|{item_id}|".encode())
            for m in (*SOURCE_MODALITIES, FUSED):
                h.update(v[m][r].tobytes())
            h.update(u.tobytes())
            keys.append(h.hexdigest())
        return keys

    def generate_previews(self, item_ids: Sequence[str], user_vectors: np.ndarray, *, seed: int = 0,
                          user_guidance: float | None = None) -> np.ndarray:
        """Previews for items given raw taste vectors (zeros = neutral); uint8 (n, H, W, 3)."""
        if self.image_gen is None:
            raise NotFittedError("no image generator was trained (config.image_generator is None)")
        rows = self._item_rows(item_ids)
        cond = self._item_cond(rows)
        user = np.asarray(user_vectors, dtype=np.float32)
        g = self.config.user_guidance if user_guidance is None else user_guidance
        # one noise seed per (seed, item): a pair's preview never depends on the other pairs of the
        # call (batch composition), so services, batch jobs and the cache all agree, and the
        # personalized and neutral previews of an item differ only by the user condition
        seeds = np.array([zlib.crc32(f"{int(seed)}\0{i}".encode()) for i in item_ids], dtype=np.int64)
        personal = self.image_gen.generate(cond, user, seed=seeds).astype(np.float32)
        if g == 1.0:
            return personal.astype(np.uint8)
        neutral = self.image_gen.generate(cond, np.zeros_like(user), seed=seeds).astype(np.float32)
        return np.clip(neutral + g * (personal - neutral), 0, 255).round().astype(np.uint8)

    def generate(self, user_ids: Sequence[str | None], item_ids: Sequence[str], *, seed: int = 0,
                 images: bool = True, blurbs: bool = True, cache: GenerationCache | None = None) -> GenerationOutput:
        """Previews and blurbs for (user, item) pairs, batched, through ``cache`` when given.

        Parameters
        ----------
        user_ids : sequence of str or None
            ``None`` or an unknown user gets the neutral (non-personalized) version.
        item_ids : sequence of str
            Items of the model (unknown ids raise :class:`UnknownIdError`).
        seed : int
            Same seed, same output.
        images, blurbs : bool
            Which parts to make (each needs its generator).
        cache : GenerationCache, optional
        """
        self._check()
        user_ids, item_ids = list(user_ids), [str(i) for i in item_ids]
        if len(user_ids) != len(item_ids):
            raise ValueError(f"user_ids has {len(user_ids)} entries but item_ids has {len(item_ids)}")
        rows = self._item_rows(item_ids)
        uvecs = self._user_vecs(user_ids)
        n = len(item_ids)
        hit_img = np.zeros(n, dtype=bool)
        hit_txt = np.zeros(n, dtype=bool)
        out_images = None
        if images and self.image_gen is not None:
            keys = self._keys("img", item_ids, rows, uvecs, seed, self.config.user_guidance)
            found = cache.get_many(keys) if cache is not None else {}
            size = self.image_gen.config.image_size
            out_images = np.zeros((n, size, size, 3), dtype=np.uint8)
            hit_img = np.array([k in found for k in keys], dtype=bool)
            for i in np.flatnonzero(hit_img):
                out_images[i] = png_array(found[keys[i]])
            todo = np.flatnonzero(~hit_img)
            if len(todo):
                fresh = self.generate_previews([item_ids[i] for i in todo], uvecs[todo], seed=seed)
                out_images[todo] = fresh
                if cache is not None:
                    cache.put_many("img", {keys[i]: png_bytes(fresh[j]) for j, i in enumerate(todo)})
        elif images:
            raise NotFittedError("no image generator was trained (config.image_generator is None)")
        out_blurbs, sources = None, [[] for _ in range(n)]
        if blurbs and self.blurb_gen is not None:
            keys = self._keys("txt", item_ids, rows, uvecs, seed, 0.0)
            found = cache.get_many(keys) if cache is not None else {}
            out_blurbs = [""] * n
            hit_txt = np.array([k in found for k in keys], dtype=bool)
            for i in np.flatnonzero(hit_txt):
                payload = json.loads(found[keys[i]].decode())
                out_blurbs[i], sources[i] = payload["text"], payload["sources"]
            todo = np.flatnonzero(~hit_txt)
            if len(todo):
                fresh = self._blurbs([item_ids[i] for i in todo], rows[todo], uvecs[todo], seed)
                new = {}
                for j, i in enumerate(todo):
                    out_blurbs[i] = fresh.texts[j]
                    sources[i] = fresh.sources[j] if fresh.sources else []
                    new[keys[i]] = json.dumps({"text": out_blurbs[i], "sources": sources[i]}).encode()
                if cache is not None:
                    cache.put_many("txt", new)
        elif blurbs:
            raise NotFittedError("no blurb generator was trained (config.blurb_generator is None)")
        hits = (hit_img | (out_images is None)) & (hit_txt | (out_blurbs is None))
        return GenerationOutput(user_ids=[str(u) if u is not None else "" for u in user_ids], item_ids=item_ids,
                                images=out_images, blurbs=out_blurbs, sources=sources, from_cache=hits)

    def _blurbs(self, item_ids: list[str], rows: np.ndarray, uvecs: np.ndarray, seed: int):
        if self.config.blurb_generator == "grounded":
            return self.blurb_gen.generate(item_ids, uvecs, seed=seed)
        return self.blurb_gen.generate_blurbs(item_ids, self.model.items.vectors["fused"][rows], uvecs, seed=seed)

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save both generators and the config atomically (the Recgen model is saved separately)."""
        self._check()
        config = {"generation": asdict(self.config), "version": self.version}

        def write(tmp: Path) -> None:
            files = []
            if self.image_gen is not None:
                self.image_gen.save(tmp / "image")
                files.append("image/manifest.json")
            if self.blurb_gen is not None:
                self.blurb_gen.save(tmp / "blurb")
                files.append("blurb/manifest.json")
            write_manifest(tmp, kind=_KIND, files=files, config=config)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, model) -> "ContentGenerator":
        """Load generators saved by :meth:`save`, attached to the fitted ``model`` they were trained with."""
        import importlib

        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND)
        try:
            gen = cls(GenerationConfig(**manifest["config"]["generation"]))
            gen.version = manifest["config"]["version"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}/manifest.json has an invalid config: {exc}") from exc
        gen.model = model
        for attr, name, sub in (("image_gen", gen.config.image_generator, "image"),
                                ("blurb_gen", gen.config.blurb_generator, "blurb")):
            if name and (directory / sub).is_dir():
                module, cls_name, _ = REGISTRY[name]
                setattr(gen, attr, getattr(importlib.import_module(module), cls_name).load(directory / sub))
        return gen
