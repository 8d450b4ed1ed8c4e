"""Grounded blurbs: "why you may like it" made only of the item's own sentences.

Each item's description and its well-rated reviews are split into sentences and embedded in
the shared space. For a (user, item) pair the sentences closest to the user's taste are
picked with maximal marginal relevance (MMR) and joined verbatim, so every statement of a
blurb is traceable to the item's own data (``BlurbOutput.sources`` says where each came
from): faithfulness is 100% by construction.

Two levels of API: the generator contract (:class:`~recgen.generators.base.BlurbGenerator`)

>>> gen = GroundedBlurbGenerator().fit(GenerationContext(model, catalog))
>>> out = gen.generate(GenerationContext(model), ["sku-1"], ["U0001"])

and the frames and vectors underneath it:

>>> gen = GroundedBlurbGenerator().fit_frames(items, reviews, encode=space.encode_text)
>>> out = gen.generate_vectors(["sku-1"], taste[None])     # zeros = neutral user
>>> out.texts[0], out.sources[0]                           # ("...", ["description", "review:17"])
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_save_npy, atomic_write_json, load_npy, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError
from recgen.generators.base import BlurbOutput
from recgen.generators.context import GenerationContext, output_user_ids, paired

_KIND = "grounded-blurbs"
DESCRIPTION, TITLE = "description", "title"

# A boundary is a run of . ! ? (optionally closed by quotes/brackets) followed by whitespace,
# or a line break. Lower-case starts split too: reviews are often written without capitals.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\s*[\r\n]+\s*")
# Tokens ending in a dot that do not end a sentence: common abbreviations and dotted acronyms
# ("e.g.", "U.S."). Single letters are boundaries: "I ordered a size M. It fits" is common in
# reviews, initials are not.
_ABBREV = frozenset("""
    approx apt appt assn ave avg bldg blvd cf co corp dept dr e.g eg esp est etc fig ft gal hr hrs
    i.e ie inc incl jr lb lbs lt ltd misc mr mrs ms mt oz pp qty sr st tbsp
    tsp vol vs yr yrs
""".split())
_LAST_TOKEN = re.compile(r"(\S+)\.$")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, keeping abbreviations whole.

    Whitespace inside a sentence is normalized to single spaces; nothing else changes, so
    every returned sentence occurs in ``" ".join(text.split())``.

    >>> split_sentences("Holds approx. three cups. fits e.g. a bag!  Nice.")
    ['Holds approx. three cups.', 'fits e.g. a bag!', 'Nice.']
    """
    if not isinstance(text, str) or not text.strip():
        return []
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        piece = text[start:m.start()] + m.group(0).strip()  # keep closing quotes with the sentence
        last = _LAST_TOKEN.search(piece.rstrip("\"'\u201d\u2019)]"))
        if "\n" not in m.group(0) and "\r" not in m.group(0) and last is not None:
            tok = last.group(1).lower().lstrip("(\"'")
            if tok in _ABBREV or re.fullmatch(r"(?:[a-z]\.)+[a-z]", tok):
                continue  # "approx. three", "e.g. a", "U.S. made": not a boundary
        out.append(piece)
        start = m.end()
    out.append(text[start:])
    return [s for s in (" ".join(p.split()) for p in out) if s]


@dataclass
class GroundedBlurbConfig:
    """Settings of :class:`GroundedBlurbGenerator`.

    Attributes
    ----------
    max_sentences : int
        Sentences per blurb.
    max_chars : int
        Length cap. Blurbs are cut at sentence boundaries only: a sentence that would not
        fit is never picked. Only when not even one of the item's sentences fits is the
        best one cut at a word boundary (ending in "...").
    min_rating_for_review_sentences : float
        Only reviews rated at least this (on the catalog's own scale) provide sentences.
        When ``reviews`` has no rating at all (no column, or every value missing) every
        review is used; otherwise a review with a missing rating is not.
    mmr_lambda : float
        Relevance vs diversity trade-off of maximal marginal relevance, in [0, 1]
        (1 = relevance only): ``score = lambda * rel - (1 - lambda) * max_sim_to_picked``.
    include_description : bool
        Use the item's description sentences.
    min_words : int
        Shorter sentences ("Love it!") are not candidates.
    """

    max_sentences: int = 2
    max_chars: int = 240
    min_rating_for_review_sentences: float = 4.0
    mmr_lambda: float = 0.7
    include_description: bool = True
    min_words: int = 3

    def __post_init__(self) -> None:
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1; got {self.max_sentences}")
        if self.max_chars < 20:
            raise ValueError(f"max_chars must be >= 20; got {self.max_chars}")
        if not 0 <= self.mmr_lambda <= 1:
            raise ValueError(f"mmr_lambda must be in [0, 1]; got {self.mmr_lambda}")
        if self.min_words < 1:
            raise ValueError(f"min_words must be >= 1; got {self.min_words}")


class GroundedBlurbGenerator:
    """Extractive, personalized blurbs with provenance (registry name ``"grounded"``, the default).

    Parameters
    ----------
    config : GroundedBlurbConfig, optional

    Attributes
    ----------
    item_ids_ : list of str
        Fitted items, in the order of ``items``.
    sentences_ : list of str
        Candidate sentences of every item, item after item (``ptr_`` delimits them).
    sources_ : list of str
        Provenance of each sentence: ``"description"``, ``"review:<index>"`` (the label of
        the review's row in the ``reviews`` frame given to :meth:`fit`) or ``"title"`` (the
        fallback for items with no usable sentence).
    ptr_ : ndarray of int64, shape (n_items + 1,)
        Item ``k``'s sentences are ``sentences_[ptr_[k]:ptr_[k + 1]]``.
    vectors_ : ndarray of float32, shape (n_sentences, dim)
        Unit sentence vectors in the shared space.
    """

    kind = "blurb"

    def __init__(self, config: GroundedBlurbConfig | None = None) -> None:
        self.config = replace(config) if config is not None else GroundedBlurbConfig()
        self.item_ids_: list[str] | None = None

    # ------------------------------------------------------------ the contract
    def fit(self, context: GenerationContext, *, progress: bool = False) -> "GroundedBlurbGenerator":
        """Collect and embed the sentences of the catalog's items and reviews (:meth:`fit_frames`).

        Parameters
        ----------
        context : GenerationContext
            Needs ``catalog``; sentences are embedded with ``context.encode_text``.
        progress : bool
            Unused (embedding is the only slow step, and the encoder reports its own progress).

        Returns
        -------
        self
        """
        catalog = context.require_catalog("the grounded blurb generator")
        return self.fit_frames(catalog.items, catalog.reviews, encode=context.encode_text)

    def generate(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> BlurbOutput:
        """One blurb per (item, user) pair, picked for the user's taste vector in ``context.model``.

        Parameters
        ----------
        context : GenerationContext
            The model whose space the sentences were embedded in (the catalog is not needed:
            the sentences are part of the saved generator).
        item_ids : sequence of str
        user_ids : sequence of str or None
            ``None`` or an unknown user: the neutral blurb.
        seed : int
            Breaks exact score ties (per pair, whatever the batch).

        Returns
        -------
        BlurbOutput
            With each sentence's provenance in ``sources``.

        Raises
        ------
        UnknownIdError
            An item is not in the model, or was not in the catalog at fit.
        """
        self._check()
        item_ids, user_ids = paired(item_ids, user_ids)
        context.item_rows(item_ids)  # an id the model does not know is named as such
        return self.generate_vectors(item_ids, context.user_vectors(user_ids), seed=seed,
                                     user_ids=output_user_ids(user_ids))

    # ------------------------------------------------------- on frames and vectors
    def fit_frames(self, items: pd.DataFrame, reviews: pd.DataFrame | None, *,
                   encode: Callable[[list[str]], np.ndarray]) -> "GroundedBlurbGenerator":
        """Collect and embed every item's candidate sentences.

        Parameters
        ----------
        items : DataFrame
            Columns ``item_id``, ``title``, optional ``description``.
        reviews : DataFrame or None
            Columns ``item_id``, ``text``, optional ``rating``. Reviews of items not in
            ``items`` are ignored.
        encode : callable
            ``list[str] -> ndarray (n, dim)``: the shared space's text encoder (the space the
            user taste vectors live in), e.g. ``MultimodalSpace.encode_text``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Missing columns, duplicate item ids, or ``encode`` returned the wrong shape.
        """
        _require(items, "items", ("item_id", "title"))
        if items["item_id"].astype(str).duplicated().any():
            dup = items["item_id"].astype(str)[items["item_id"].astype(str).duplicated()].unique()[:5].tolist()
            raise ValueError(f"items has duplicate item_id values, e.g. {dup}")
        c = self.config
        ids = items["item_id"].astype(str).tolist()
        per_item: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
        if c.include_description and "description" in items.columns:
            for item_id, desc in zip(ids, items["description"]):
                per_item[item_id] += [(s, DESCRIPTION) for s in split_sentences(desc)]
        if reviews is not None and len(reviews):
            _require(reviews, "reviews", ("item_id", "text"))
            keep = self._positive(reviews)
            sub = reviews[keep]
            for label, item_id, text in zip(sub.index, sub["item_id"].astype(str), sub["text"]):
                if item_id in per_item:
                    per_item[item_id] += [(s, f"review:{label}") for s in split_sentences(text)]
        sentences: list[str] = []
        sources: list[str] = []
        ptr = [0]
        for item_id, title in zip(ids, items["title"]):
            seen: set[str] = set()
            kept = []
            for s, src in per_item[item_id]:
                key = s.lower()
                if len(s.split()) >= c.min_words and key not in seen:
                    seen.add(key)
                    kept.append((s, src))
            if not kept:  # nothing usable: the title is the one grounded statement we have
                kept = [(" ".join(str(title).split()) or item_id, TITLE)]
            sentences += [s for s, _ in kept]
            sources += [src for _, src in kept]
            ptr.append(len(sentences))
        self.vectors_ = self._encode_unique(sentences, encode)
        self.item_ids_ = ids
        self._row = {i: k for k, i in enumerate(ids)}
        self.sentences_, self.sources_ = sentences, sources
        self.ptr_ = np.asarray(ptr, dtype=np.int64)
        return self

    def _positive(self, reviews: pd.DataFrame) -> np.ndarray:
        if "rating" not in reviews.columns:
            return np.ones(len(reviews), dtype=bool)
        rating = pd.to_numeric(reviews["rating"], errors="coerce")
        if rating.isna().all():
            return np.ones(len(reviews), dtype=bool)
        return (rating >= self.config.min_rating_for_review_sentences).to_numpy()

    @staticmethod
    def _encode_unique(sentences: list[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        # the same sentence in many reviews ("Fits true to size.") is embedded once
        uniq = list(dict.fromkeys(sentences))
        vecs = np.asarray(encode(uniq), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(uniq):
            raise ValueError(f"encode returned an array of shape {vecs.shape} for {len(uniq)} sentences; "
                             f"expected ({len(uniq)}, dim)")
        if not np.isfinite(vecs).all():
            raise ValueError("encode returned NaN or inf values")
        # cosine needs unit rows; re-normalizing costs nothing if they already are
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        where = {s: k for k, s in enumerate(uniq)}
        return np.ascontiguousarray(vecs[[where[s] for s in sentences]])

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self.item_ids_ is None:
            raise NotFittedError("GroundedBlurbGenerator is not fitted: call fit() or load() first")

    def generate_vectors(self, item_ids: Sequence[str], user_vectors: np.ndarray, *, seed: int = 0,
                         user_ids: Sequence[str] | None = None) -> BlurbOutput:
        """One blurb per (item, user vector) pair.

        Parameters
        ----------
        item_ids : sequence of str, length n
        user_vectors : ndarray of float, shape (n, dim)
            Taste vectors in the space the sentences were embedded in. An all-zero row is the
            neutral user: the item's first description sentence, then its most central
            review sentence(s).
        seed : int
            Only breaks exact score ties; the output is otherwise deterministic.
        user_ids : sequence of str, optional
            Copied to ``BlurbOutput.user_ids``.

        Returns
        -------
        BlurbOutput
            ``texts[i]`` is its sentences joined verbatim (whitespace normalized, first letter
            capitalized); ``sources[i]`` gives each sentence's provenance, in order.

        Raises
        ------
        UnknownIdError
            Some item ids were not fitted (the message names them).
        ValueError
            ``user_vectors`` has the wrong shape.
        """
        self._check()
        item_ids = [str(i) for i in item_ids]
        users = np.asarray(user_vectors, dtype=np.float32)
        dim = self.vectors_.shape[1]
        if users.ndim != 2 or users.shape != (len(item_ids), dim):
            raise ValueError(f"user_vectors must have shape ({len(item_ids)}, {dim}) (one per item id); "
                             f"got {users.shape}")
        unknown = list(dict.fromkeys(i for i in item_ids if i not in self._row))
        if unknown:
            raise UnknownIdError(f"{len(unknown)} item id(s) were not fitted: {unknown[:10]}"
                                 + (" ..." if len(unknown) > 10 else ""))
        if user_ids is not None and len(user_ids) != len(item_ids):
            raise ValueError(f"user_ids has {len(user_ids)} entries; item_ids has {len(item_ids)}")
        texts, sources = [], []
        for item_id, u in zip(item_ids, users):
            k = self._row[item_id]
            lo, hi = int(self.ptr_[k]), int(self.ptr_[k + 1])
            text, picks = self._blurb(item_id, lo, hi, u, seed)
            texts.append(text)
            sources.append([self.sources_[lo + p] for p in picks])
        return BlurbOutput(texts=texts, sources=sources, item_ids=item_ids,
                           user_ids=[str(u) for u in user_ids] if user_ids is not None else [])

    def _blurb(self, item_id: str, lo: int, hi: int, user: np.ndarray, seed: int) -> tuple[str, list[int]]:
        c = self.config
        vecs = self.vectors_[lo:hi]
        sents = self.sentences_[lo:hi]
        srcs = self.sources_[lo:hi]
        n = len(sents)
        lengths = np.array([len(s) for s in sents])
        norm = float(np.linalg.norm(user))
        neutral = norm == 0.0
        if neutral:
            # centrality: mean cosine to the item's other sentences (its "typical" statement)
            rel = (vecs @ vecs.sum(axis=0) - 1.0) / max(n - 1, 1)
            is_desc = np.array([s == DESCRIPTION for s in srcs])
            has_reviews = bool((~is_desc).any())
            first_desc = int(np.argmax(is_desc)) if is_desc.any() else None
        else:
            rel = vecs @ (user / norm)
        chosen: list[int] = []
        budget = c.max_chars
        rng = None
        while len(chosen) < min(c.max_sentences, n):
            sep = 1 if chosen else 0
            ok = lengths + sep <= budget
            ok[chosen] = False
            if neutral:
                if not chosen and first_desc is not None and ok[first_desc]:
                    chosen.append(first_desc)
                    budget -= lengths[first_desc]
                    continue
                if has_reviews and (ok & ~is_desc).any():
                    ok &= ~is_desc  # after the description's lead, the reviews speak
                elif (ok & is_desc).any():  # no review left: the description, in order
                    nxt = int(np.flatnonzero(ok & is_desc)[0])
                    chosen.append(nxt)
                    budget -= lengths[nxt] + sep
                    continue
            if not ok.any():
                break
            penalty = (vecs @ vecs[chosen].T).max(axis=1) if chosen else 0.0
            score = np.where(ok, c.mmr_lambda * rel - (1 - c.mmr_lambda) * penalty, -np.inf)
            best = np.flatnonzero(score == score.max())
            if len(best) > 1:  # the seed breaks exact ties, per pair, whatever the batch
                rng = rng or np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(item_id.encode())])
                nxt = int(rng.choice(best))
            else:
                nxt = int(best[0])
            chosen.append(nxt)
            budget -= lengths[nxt] + sep
        if not chosen:  # no sentence fits at all: cut the most relevant one at a word boundary
            nxt = int(np.argmax(rel))
            cut = sents[nxt][: c.max_chars - 3].rsplit(" ", 1)[0].rstrip(",;:")
            return _capitalize(cut + "..."), [nxt]
        return _capitalize(" ".join(sents[p] for p in chosen)), chosen

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save to ``directory`` (JSON sentences + ``vectors.npy``, checksummed manifest; atomic)."""
        self._check()
        payload = {"item_ids": self.item_ids_, "sentences": self.sentences_, "sources": self.sources_,
                   "ptr": self.ptr_.tolist()}

        def write(tmp: Path) -> None:
            atomic_write_json(tmp / "sentences.json", payload)
            atomic_save_npy(tmp / "vectors.npy", self.vectors_)
            write_manifest(tmp, kind=_KIND, files=["sentences.json", "vectors.npy"],
                           config={"grounded": asdict(self.config)})

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "GroundedBlurbGenerator":
        """Load a generator written by :meth:`save`.

        Parameters
        ----------
        directory : path
        verify : bool
            Check every file against the manifest's checksums.
        device : str, optional
            Accepted for the loaders' common signature; this generator runs on numpy.

        Raises
        ------
        ArtifactError
            Missing, incomplete, corrupted or inconsistent directory.
        """
        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND, verify=verify)
        try:
            gen = cls(GroundedBlurbConfig(**manifest["config"]["grounded"]))
            payload = json.loads((directory / "sentences.json").read_text())
            gen.item_ids_ = [str(i) for i in payload["item_ids"]]
            gen.sentences_ = [str(s) for s in payload["sentences"]]
            gen.sources_ = [str(s) for s in payload["sources"]]
            gen.ptr_ = np.asarray(payload["ptr"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}: invalid grounded-blurb files: {exc}") from exc
        gen.vectors_ = load_npy(directory / "vectors.npy").astype(np.float32, copy=False)
        gen._row = {i: k for k, i in enumerate(gen.item_ids_)}
        n = len(gen.sentences_)
        if (gen.vectors_.ndim != 2 or len(gen.vectors_) != n or len(gen.sources_) != n
                or len(gen.ptr_) != len(gen.item_ids_) + 1 or gen.ptr_[0] != 0 or gen.ptr_[-1] != n
                or np.any(np.diff(gen.ptr_) < 1)):
            raise ArtifactError(f"{directory}: sentences, sources, pointers and vectors do not match")
        return gen


def _require(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; has {list(frame.columns)}")


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
