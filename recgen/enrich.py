"""The one enrichment call every adapter makes: candidate DataFrame in, DataFrame out.

:class:`Enricher` is a read-only view of a saved recgen directory (the fitted model, and
the trained preview/blurb generators when present; the layout is :mod:`recgen.workdir`'s).
The Python API, the scikit-learn transformer, the HTTP service, the batch Parquet job and
the Ray Data job (all in ``recgen_adapters``) call :meth:`Enricher.enrich`, so a feature has
the same value wherever it is computed. The similarity features themselves come from
:func:`recgen.features.enrich_candidates`.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_write_bytes
from recgen.errors import ArtifactError, NotFittedError
from recgen.features import FEATURE_MODALITIES, _check_id_columns_unique, enrich_candidates, feature_columns
from recgen.ids import id_strings
from recgen.workdir import directory_version, resolve_directory

__all__ = ["Enricher", "PREVIEW_FORMATS", "enrich_candidates", "enrich_frame", "feature_columns"]

log = logging.getLogger(__name__)

PREVIEW_FORMATS = ("path", "bytes")


class Enricher:
    """Add recgen similarity features, blurbs and preview references to candidate frames.

    Parameters
    ----------
    model : Recgen
        A fitted model.
    generator : ContentGenerator, optional
        Trained preview/blurb generators attached to ``model`` (needed for ``blurbs=True``
        or ``previews=True``).
    preview_dir : path, optional
        Where ``previews=True, preview_format="path"`` writes PNG files (content-addressed
        names, written atomically; existing files are reused).
    generation_cache : GenerationCache or str, optional
        Cache of generated content (a :class:`recgen.generators.personalized.GenerationCache`
        or a SQLAlchemy URL / SQLite path).
    seed : int, default 0
        Seed of generated content (same seed, same preview and blurb).

    Notes
    -----
    An ``Enricher`` never changes the model, so one instance may serve many threads and
    ``copy.deepcopy`` returns the instance itself (scikit-learn's ``clone`` deep-copies
    parameters; copying FAISS indexes would be slow and pointless).

    Examples
    --------
    >>> from recgen import Enricher
    >>> enricher = Enricher.load("recgen-demo", preview_dir="previews")
    >>> out = enricher.enrich(candidates, blurbs=True, previews=True)
    """

    def __init__(self, model, generator=None, *, preview_dir: str | Path | None = None,
                 generation_cache: Any = None, seed: int = 0) -> None:
        model._check()
        self.model = model
        self.generator = generator
        self.preview_dir = Path(preview_dir) if preview_dir is not None else None
        if isinstance(generation_cache, (str, Path)):
            from recgen.generators import GenerationCache

            generation_cache = GenerationCache(str(generation_cache))
        self.generation_cache = generation_cache
        self.seed = int(seed)
        self._gen_lock = threading.Lock()  # torch generators and the SQLite cache are used one call at a time
        self._source: tuple[str, dict[str, Any]] | None = None  # set by load(): how to reload after unpickling
        #: :func:`directory_version` of the directory this was loaded from (None: built in memory)
        self.model_version: str | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, directory: str | Path, *, generators: str | Path | None | bool = None,
             preview_dir: str | Path | None = None, generation_cache: Any = None, seed: int = 0,
             use_gpu: bool | str = False, verify: bool = True) -> "Enricher":
        """Load a saved recgen directory (see :func:`resolve_directory` for ``generators``).

        ``use_gpu`` defaults to False: enrichment does no index search, and services that
        do search usually run several processes per GPU-less host.
        """
        from recgen.model import Recgen

        paths = resolve_directory(directory, generators)
        version = directory_version(directory, generators)
        model = Recgen.load(paths.model, use_gpu=use_gpu, verify=verify)
        gen = None
        if paths.generators is not None:
            from recgen.generators import ContentGenerator

            gen = ContentGenerator.load(paths.generators, model)
        if directory_version(directory, generators) != version:
            # a save swapped a new directory in while we read: the files may come from two versions
            raise ArtifactError(f"{paths.model} was replaced while it was being loaded; load it again")
        log.info("loaded recgen model %s from %s (generators: %s)", version, paths.model, paths.generators)
        out = cls(model, gen, preview_dir=preview_dir, generation_cache=generation_cache, seed=seed)
        out.model_version = version
        if generation_cache is None or isinstance(generation_cache, (str, Path)):
            out._source = (str(Path(directory).resolve()), {
                "generators": generators if isinstance(generators, bool) or generators is None else str(generators),
                "preview_dir": None if preview_dir is None else str(preview_dir),
                "generation_cache": None if generation_cache is None else str(generation_cache),
                "seed": seed, "use_gpu": use_gpu, "verify": verify})
        return out

    def __deepcopy__(self, memo: dict) -> "Enricher":
        return self

    def __reduce__(self):
        # Pickling (joblib, multiprocessing, Ray) carries the directory, never the model: the copy
        # reloads it, checksums verified. Models must not travel as pickles (see STYLE, persistence).
        if self._source is None:
            raise TypeError("this Enricher was built from an in-memory model and cannot be pickled; "
                            "save the model (Recgen.save(DIR / 'model')) and use Enricher.load(DIR)")
        return (_reload, self._source)

    def __repr__(self) -> str:
        info = self.model.fit_info
        gen = "none" if self.generator is None else (
            f"{self.generator.config.image_generator}/{self.generator.config.blurb_generator}")
        return f"Enricher(items={info.get('n_items')}, users={info.get('n_users')}, generators={gen})"

    # --------------------------------------------------------------- properties
    @property
    def has_previews(self) -> bool:
        return self.generator is not None and self.generator.image_gen is not None

    @property
    def has_blurbs(self) -> bool:
        return self.generator is not None and self.generator.blurb_gen is not None

    def feature_names(self, *, prefix: str = "recgen_", modalities: Sequence[str] | None = None) -> list[str]:
        """Columns ``enrich(features=True)`` adds, in order."""
        return feature_columns(prefix, self._modalities(modalities))

    def _modalities(self, modalities: Sequence[str] | None) -> tuple[str, ...]:
        if modalities is None:
            return tuple(m for m in FEATURE_MODALITIES if m in self.model.items.vectors)
        if isinstance(modalities, str):
            raise TypeError(f"modalities must be a sequence of names, not the string {modalities!r}; "
                            f"write modalities=[{modalities!r}]")
        return tuple(modalities)

    # ------------------------------------------------------------------- enrich
    def enrich(self, candidates: pd.DataFrame, *, features: bool = True, blurbs: bool = False,
               previews: bool = False, preview_format: str = "path", user_col: str = "user_id",
               item_col: str = "item_id", prefix: str = "recgen_",
               modalities: Sequence[str] | None = None) -> pd.DataFrame:
        """Return a copy of ``candidates`` with recgen columns added.

        Parameters
        ----------
        candidates : pandas.DataFrame
            One row per (user, item) candidate; other columns, the row order and the index
            are kept.
        features : bool, default True
            Add ``{prefix}sim_{fused,text,image,review}`` (float32 cosine similarity of the
            user's taste and the item, NaN where unknown) and ``{prefix}known_user`` /
            ``{prefix}known_item`` (bool); see :func:`recgen.enrich.enrich_candidates`.
        blurbs : bool, default False
            Add ``{prefix}blurb`` (str; None for items unknown to the model). Unknown users
            get the neutral, non-personalized blurb.
        previews : bool, default False
            Add ``{prefix}preview``: the path of a PNG file under ``preview_dir``
            (``preview_format="path"``) or the PNG bytes (``"bytes"``); None for unknown items.
        preview_format : {"path", "bytes"}
        user_col, item_col : str
            Id columns.
        prefix : str
            Prefix of the added columns.
        modalities : sequence of str, optional
            Similarities to add (default: every modality of the model).

        Raises
        ------
        TypeError, ValueError
            ``candidates`` is not a DataFrame or lacks the id columns; bad options.
        NotFittedError
            ``blurbs``/``previews`` without trained generators.
        """
        if not isinstance(candidates, pd.DataFrame):
            raise TypeError(f"candidates must be a pandas DataFrame; got {type(candidates).__name__}")
        missing = [c for c in (user_col, item_col) if c not in candidates.columns]
        if missing:
            raise ValueError(f"candidates is missing column(s) {missing}; it has {list(candidates.columns)}. "
                             f"Pass user_col=/item_col= if your id columns are named differently")
        _check_id_columns_unique(candidates, (user_col, item_col))
        if preview_format not in PREVIEW_FORMATS:
            raise ValueError(f"preview_format must be one of {PREVIEW_FORMATS}; got {preview_format!r}")
        if blurbs and not self.has_blurbs:
            raise NotFittedError("blurbs=True needs a trained blurb generator: save one with "
                                 "ContentGenerator(...).fit(model, catalog).save(DIR / 'generators'), or pass blurbs=False")
        if previews and not self.has_previews:
            raise NotFittedError("previews=True needs a trained preview generator: save one with "
                                 "ContentGenerator(...).fit(model, catalog).save(DIR / 'generators'), or pass previews=False")
        if previews and preview_format == "path" and self.preview_dir is None:
            raise ValueError("previews=True with preview_format='path' needs preview_dir= (where PNG files are "
                             "written); or use preview_format='bytes'")
        if features:
            out = enrich_candidates(candidates, items=self.model.items, profiles=self.model.profiles,
                                    user_col=user_col, item_col=item_col, prefix=prefix,
                                    modalities=self._modalities(modalities))
        else:
            out = candidates.copy()
        if blurbs or previews:
            self._add_generated(out, candidates[user_col], candidates[item_col], blurbs=blurbs, previews=previews,
                                preview_format=preview_format, prefix=prefix)
        return out

    def _add_generated(self, out: pd.DataFrame, users: pd.Series, items: pd.Series, *, blurbs: bool, previews: bool,
                       preview_format: str, prefix: str) -> None:
        u = np.asarray(id_strings(users), dtype=object)
        i = np.asarray(id_strings(items), dtype=object)
        known_item = self.model.items.rows(i) >= 0
        pairs = pd.DataFrame({"u": u[known_item], "i": i[known_item]})
        uniq = pairs.drop_duplicates().reset_index(drop=True)
        # unknown users get the neutral version: the generator treats None as "no taste"
        known_user = self.model.profiles.rows(list(uniq["u"])) >= 0
        gen_users = [uu if k else None for uu, k in zip(uniq["u"], known_user)]
        blurb_col = np.full(len(out), None, dtype=object)
        prev_col = np.full(len(out), None, dtype=object)
        if len(uniq):
            with self._gen_lock:  # previews come with their blurbs (cached): they show the item the blurb names
                res = self.generator.generate(gen_users, list(uniq["i"]), seed=self.seed, images=previews,
                                              blurbs=blurbs or (previews and self.has_blurbs),
                                              cache=self.generation_cache)
            # map each candidate row to its unique pair
            pos = pd.MultiIndex.from_frame(uniq).get_indexer(pd.MultiIndex.from_frame(pairs))
            rows = np.flatnonzero(known_item)
            if blurbs:
                blurb_col[rows] = np.asarray(res.blurbs, dtype=object)[pos]
            if previews:
                refs = [self._preview_ref(gen_users[j], uniq["i"][j], _png(res, j), preview_format)
                        for j in range(len(uniq))]
                arr = np.empty(len(refs), dtype=object)
                arr[:] = refs
                prev_col[rows] = arr[pos]
        if blurbs:
            out[f"{prefix}blurb"] = blurb_col
        if previews:
            out[f"{prefix}preview"] = prev_col

    def _preview_ref(self, user: str | None, item: str, png: bytes, preview_format: str) -> bytes | str:
        if preview_format == "bytes":
            return png
        # content-addressed name: the same pair from the same generator maps to the same file, and no
        # caller-supplied id ever becomes part of a path
        name = self.preview_key(user, item) + ".png"
        path = self.preview_dir / name[:2] / name
        if not path.exists():
            atomic_write_bytes(path, png)
        return str(path.resolve())

    def preview_key(self, user: str | None, item: str) -> str:
        """Stable hex name of a (user, item) preview from this generator and seed."""
        h = hashlib.sha256()
        for part in (self.generator.version or "", "" if user is None else str(user), str(item), str(self.seed)):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:40]

    def preview_png(self, user_id: str | None, item_id: str) -> bytes:
        """One (personalized) preview as PNG bytes; an unknown or None user gets the neutral one.

        The PNG says in ``tEXt`` chunks whether the preview was generated without the item's
        photo (``recgen:generated``, "true"/"false": show it marked as generated) and which
        item of the user's history it shows (``recgen:anchor``), the same one the blurb names.

        Raises
        ------
        UnknownIdError
            ``item_id`` is not in the model.
        NotFittedError
            No preview generator was trained.
        """
        if not self.has_previews:
            raise NotFittedError("no preview generator was trained for this model")
        user = user_id if user_id is not None and self.model.profiles.rows([str(user_id)])[0] >= 0 else None
        with self._gen_lock:  # blurbs too (cached): the preview shows the history item the blurb names
            res = self.generator.generate([user], [str(item_id)], seed=self.seed, images=True,
                                          blurbs=self.has_blurbs, cache=self.generation_cache)
        return _png(res, 0)


def _png(res, j: int) -> bytes:
    """Row ``j``'s preview as PNG, with ``tEXt`` chunks ``recgen:generated`` and ``recgen:anchor``."""
    from recgen.generators.base import png_bytes

    text = {"recgen:generated": "true" if (res.generated and res.generated[j]) else "false"}
    if res.anchors and res.anchors[j]:
        text["recgen:anchor"] = str(res.anchors[j])
    return png_bytes(res.images[j], text)


def _reload(directory: str, kwargs: dict[str, Any]) -> Enricher:
    return Enricher.load(directory, **kwargs)


def enrich_frame(directory: str | Path, candidates: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """One-shot helper: ``Enricher.load(directory).enrich(candidates, **kwargs)``.

    Loading takes seconds; keep an :class:`Enricher` around when enriching repeatedly.
    """
    return Enricher.load(directory).enrich(candidates, **kwargs)
