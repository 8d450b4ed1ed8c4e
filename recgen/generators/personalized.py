"""``ContentGenerator``: personalized preview images and blurbs for (user, item) pairs.

Ties a fitted :class:`~recgen.model.Recgen` (item vectors, user taste vectors) to one preview
generator and one blurb generator from the registry, trains them on the catalog, and serves
``generate(user_ids, item_ids, seed=...)`` in batches with a content-addressed cache.

It knows the generators only through their contract (:mod:`recgen.generators.base`):
``part.fit(context)`` and ``part.generate(context, item_ids, user_ids, seed=...)``. What a
generator trains on and how it personalizes (the preview generator's training pairs,
condition dropout and user guidance, for one) is the generator's own business and is set
through its config (``image_overrides``, ``blurb_overrides``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import sqlalchemy as sa

from recgen._io import read_manifest, save_directory, write_manifest
from recgen.catalog.data import CatalogData
from recgen.errors import ArtifactError, NotFittedError
from recgen.generators.base import png_array, png_bytes
from recgen.generators.context import GenerationContext
from recgen.generators.registry import BLURB_GENERATORS, IMAGE_GENERATORS, config_class, generator_class, make_generator
from recgen.modalities import FUSED, SOURCE_MODALITIES

log = logging.getLogger(__name__)

_KIND = "content-generator"


@dataclass
class GenerationConfig:
    """Which generators to train and how.

    Attributes
    ----------
    image_generator : {"studio", "cvae", "cgan"} or None
        A preview generator of the registry; None skips previews. ``studio`` (the default)
        keeps the product photo and presents it for the user (and edits a retrieved exemplar
        for items without a photo); ``cvae`` / ``cgan`` draw every preview from vectors.
    blurb_generator : {"grounded", "peter"} or None
        A blurb generator of the registry; None skips blurbs.
    image_overrides, blurb_overrides : dict
        Config fields passed to the generators (e.g. ``{"epochs": 20, "image_size": 64,
        "pairs_per_item": 2, "user_guidance": 1.0}`` for the preview generator: see its
        config class, :func:`~recgen.generators.registry.config_class`).
    seed : int
        Passed to each generator whose config has a ``seed`` (unless its overrides set one).
    """

    image_generator: str | None = "studio"
    blurb_generator: str | None = "grounded"
    image_overrides: dict[str, Any] = field(default_factory=dict)
    blurb_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_generator is not None and self.image_generator not in IMAGE_GENERATORS:
            raise ValueError(f"image_generator must be one of {IMAGE_GENERATORS} or None; got {self.image_generator!r}")
        if self.blurb_generator is not None and self.blurb_generator not in BLURB_GENERATORS:
            raise ValueError(f"blurb_generator must be one of {BLURB_GENERATORS} or None; got {self.blurb_generator!r}")
        for name in ("image_overrides", "blurb_overrides"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict of config fields; got {type(getattr(self, name)).__name__}")


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
    anchors : list of (str or None)
        The user's history item each row shows or names ("goes with what you have"), None
        where there is none (no history, neutral user, or generators that never name one).
    generated : list of bool
        Whether each preview was made without the item's own photo: show it marked as
        generated. Empty when previews are off.
    shown : list of (str or None)
        The history item each preview shows on its card, None where it shows none (e.g. the
        product leaves no corner free, while the blurb may still name one). Empty when
        previews are off.
    """

    user_ids: list[str]
    item_ids: list[str]
    images: np.ndarray | None
    blurbs: list[str] | None
    sources: list[list[str]]
    from_cache: np.ndarray
    anchors: list[str | None] = field(default_factory=list)
    generated: list[bool] = field(default_factory=list)
    shown: list[str | None] = field(default_factory=list)


class GenerationCache:
    """Generated content keyed by a content hash of (generator version and settings, item vectors,
    user vector, seed).

    Any change to the item (its vectors change), to the user's taste, or to the generator
    (a refit gets a new version id; a changed setting a new digest) changes the key, so stale
    content is never served.
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


@dataclass(frozen=True)
class _Part:
    """How one kind of generated content is configured, stored, cached and returned."""

    kind: str  # the generator kind ("preview" / "blurb")
    attr: str  # ContentGenerator attribute holding the fitted generator
    name_field: str  # GenerationConfig field naming the generator
    overrides_field: str  # GenerationConfig field with its config overrides
    subdir: str  # folder of the saved generator
    cache_kind: str  # GenerationCache kind column (and key prefix)
    take: Callable[[Any, int], Any]  # (generator output, row) -> one pair's value
    encode: Callable[[Any], bytes]  # value -> cache payload
    decode: Callable[[bytes], Any]  # cache payload -> value


def _blurb_payload(value: tuple[str, list[str], str | None]) -> bytes:
    return json.dumps({"text": value[0], "sources": value[1], "anchor": value[2]}).encode()


def _blurb_value(payload: bytes) -> tuple[str, list[str], str | None]:
    d = json.loads(payload.decode())
    return d["text"], d["sources"], d.get("anchor")


def _preview_payload(value: tuple[np.ndarray, str | None, bool]) -> bytes:
    head = json.dumps({"anchor": value[1], "generated": bool(value[2])}).encode()
    return len(head).to_bytes(4, "big") + head + png_bytes(value[0])


def _preview_value(payload: bytes) -> tuple[np.ndarray, str | None, bool]:
    n = int.from_bytes(payload[:4], "big")
    head = json.loads(payload[4:4 + n].decode())
    return png_array(payload[4 + n:]), head["anchor"], bool(head["generated"])


def _row(values: list, j: int, default: Any = None) -> Any:
    return values[j] if values else default


# blurbs first: the preview shows the history item the blurb names
_PARTS = (
    _Part("blurb", "blurb_gen", "blurb_generator", "blurb_overrides", "blurb", "txt",
          take=lambda out, j: (out.texts[j], out.sources[j] if out.sources else [], _row(out.anchors, j)),
          encode=_blurb_payload, decode=_blurb_value),
    _Part("preview", "image_gen", "image_generator", "image_overrides", "image", "img",
          take=lambda out, j: (out.images[j], _row(out.anchors, j), bool(_row(out.generated, j, True))),
          encode=_preview_payload, decode=_preview_value),
)
# GenerationConfig fields that moved into the preview generator's config: saves of older
# recgen versions still carry them in the generation settings
_MOVED_TO_PREVIEW = ("pairs_per_item", "cond_dropout", "user_guidance")


def _make(name: str, overrides: dict[str, Any], seed: int):
    has_seed = "seed" in {f.name for f in fields(config_class(name))}
    return make_generator(name, **{**({"seed": seed} if has_seed else {}), **overrides})


def _takes_anchors(gen) -> bool:
    """Whether a preview generator's ``generate`` accepts ``anchors`` (shows a named history item)."""
    import inspect

    return "anchors" in inspect.signature(gen.generate).parameters


def _settings_digest(gen) -> str:
    """Short digest of a generator's config: a setting changed after fit (say, the preview
    generator's ``user_guidance``) changes the cache keys."""
    body = json.dumps(asdict(gen.config), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class ContentGenerator:
    """Personalized previews and blurbs on top of a fitted :class:`~recgen.model.Recgen`.

    Attributes
    ----------
    config : GenerationConfig
    image_gen : PreviewGenerator or None
        The fitted preview generator (None when ``config.image_generator`` is None).
    blurb_gen : BlurbGenerator or None
        The fitted blurb generator.
    model : Recgen or None
        The model the generators condition on.
    version : str or None
        Random id of this fit: part of every cache key.

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

        Returns
        -------
        self
        """
        model._check()
        self.model = model
        context = GenerationContext(model, catalog)
        for part in _PARTS:
            name = getattr(self.config, part.name_field)
            gen = None
            if name:
                gen = _make(name, getattr(self.config, part.overrides_field), self.config.seed)
                gen = gen.fit(context, progress=progress)
            setattr(self, part.attr, gen)
        self.version = uuid.uuid4().hex
        return self

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self.model is None or (self.image_gen is None and self.blurb_gen is None):
            raise NotFittedError("ContentGenerator is not fitted: call fit(model, catalog) or load() first")

    def _keys(self, part: _Part, gen, item_ids: Sequence[str], rows: np.ndarray, user_vecs: np.ndarray,
              seed: int, anchors: Sequence[str | None] | None = None, cards: bool = False) -> list[str]:
        v = self.model.items.vectors
        settings = _settings_digest(gen) + ("|cards" if cards else "")  # blurbs name only what a card can show
        keys = []
        for j, (item_id, r, u) in enumerate(zip(item_ids, rows, user_vecs)):
            # v5: payloads carry the anchor (and the preview's generated flag); the preview's
            # key has the anchor it was asked to show. Since v5 an anchor is a history item the
            # user liked and, with a card-showing preview generator, one the card can show.
            anchor = anchors[j] if anchors is not None else None
            h = hashlib.sha256(f"v5|{part.cache_kind}|{self.version}|{seed}|{settings}|{item_id}|{anchor}|".encode())
            for m in (*SOURCE_MODALITIES, FUSED):
                h.update(v[m][r].tobytes())
            h.update(u.tobytes())
            keys.append(h.hexdigest())
        return keys

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
            Same seed, same output; a pair's output does not depend on the other pairs.
        images, blurbs : bool
            Which parts to make (each needs its generator).
        cache : GenerationCache, optional

        Returns
        -------
        GenerationOutput

        Raises
        ------
        NotFittedError
            Not fitted, or a part asked for whose generator was not configured.
        UnknownIdError
            An item is not in the model.
        ValueError
            ``user_ids`` and ``item_ids`` differ in length.
        """
        self._check()
        user_ids, item_ids = list(user_ids), [str(i) for i in item_ids]
        if len(user_ids) != len(item_ids):
            raise ValueError(f"user_ids has {len(user_ids)} entries but item_ids has {len(item_ids)}")
        # with a preview generator that shows a history card, blurbs name only items the card
        # can show, in every call (with or without images): blurb and card name the same item
        cards = self.image_gen is not None and getattr(self.image_gen, "shows_cards", False)
        context = GenerationContext(self.model, nameable=self.image_gen.can_show if cards else None)
        rows = context.item_rows(item_ids)
        uvecs = context.user_vectors(user_ids)
        n = len(item_ids)
        values: dict[str, list[Any]] = {}
        hits = np.ones(n, dtype=bool)
        named: list[str | None] | None = None  # the history items the blurbs name
        for part, wanted in zip(_PARTS, (blurbs, images)):
            if not wanted:
                continue
            gen = getattr(self, part.attr)
            if gen is None:
                raise NotFittedError(f"no {part.kind} generator was trained (config.{part.name_field} is None)")
            pass_anchors = part.kind == "preview" and named is not None and _takes_anchors(gen)
            keys = self._keys(part, gen, item_ids, rows, uvecs, seed, named if pass_anchors else None, cards)
            found = cache.get_many(keys) if cache is not None else {}
            got: list[Any] = [part.decode(found[k]) if k in found else None for k in keys]
            hit = np.array([k in found for k in keys], dtype=bool)
            todo = np.flatnonzero(~hit)
            if len(todo):
                extra = {"anchors": [named[i] for i in todo]} if pass_anchors else {}
                fresh = gen.generate(context, [item_ids[i] for i in todo], [user_ids[i] for i in todo], seed=seed,
                                     **extra)
                for j, i in enumerate(todo):
                    got[i] = part.take(fresh, j)
                if cache is not None:
                    cache.put_many(part.cache_kind, {keys[i]: part.encode(got[i]) for i in todo})
            values[part.kind] = got
            hits &= hit
            if part.kind == "blurb":
                named = [a for _, _, a in got]
        out_images = out_blurbs = None
        sources: list[list[str]] = [[] for _ in range(n)]
        anchors: list[str | None] = list(named) if named is not None else [None] * n
        generated: list[bool] = []
        shown: list[str | None] = []
        if "preview" in values:
            size = self.image_gen.config.image_size
            out_images = np.zeros((n, size, size, 3), dtype=np.uint8)
            for i, (image, anchor, gen_flag) in enumerate(values["preview"]):
                out_images[i] = image
                anchors[i] = anchor if anchor is not None else anchors[i]
                generated.append(gen_flag)
                shown.append(anchor)
        if "blurb" in values:
            out_blurbs = [text for text, _, _ in values["blurb"]]
            sources = [list(src) for _, src, _ in values["blurb"]]
        return GenerationOutput(user_ids=[str(u) if u is not None else "" for u in user_ids], item_ids=item_ids,
                                images=out_images, blurbs=out_blurbs, sources=sources, from_cache=hits,
                                anchors=anchors, generated=generated, shown=shown)

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save both generators and the config atomically (the Recgen model is saved separately)."""
        self._check()
        config = {"generation": asdict(self.config), "version": self.version}

        def write(tmp: Path) -> None:
            files = []
            for part in _PARTS:
                gen = getattr(self, part.attr)
                if gen is not None:
                    gen.save(tmp / part.subdir)
                    files.append(f"{part.subdir}/manifest.json")
            write_manifest(tmp, kind=_KIND, files=files, config=config)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, model, *, verify: bool = True,
             device: str | None = None) -> "ContentGenerator":
        """Load generators saved by :meth:`save`, attached to the fitted ``model`` they were trained with.

        Parameters
        ----------
        directory : path
        model : Recgen
            The model the generators were trained with.
        verify : bool
            Check every file against the manifests' checksums.
        device : str, optional
            Torch device for the generators (default: the saved configs').

        Raises
        ------
        ArtifactError
            Missing, incomplete, tampered or inconsistent directory.
        """
        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND, verify=verify)
        try:
            settings = dict(manifest["config"]["generation"])
            legacy = {k: settings.pop(k) for k in _MOVED_TO_PREVIEW if k in settings}
            gen = cls(GenerationConfig(**settings))
            gen.version = manifest["config"]["version"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}/manifest.json has an invalid config: {exc}") from exc
        gen.model = model
        for part in _PARTS:
            name = getattr(gen.config, part.name_field)
            if name and (directory / part.subdir).is_dir():
                loaded = generator_class(name).load(directory / part.subdir, verify=verify, device=device)
                setattr(gen, part.attr, loaded)
        if legacy and gen.image_gen is not None:  # an older save: its settings apply to the preview part
            own = {f.name for f in fields(gen.image_gen.config)}
            gen.image_gen.config = replace(gen.image_gen.config, **{k: v for k, v in legacy.items() if k in own})
        return gen
