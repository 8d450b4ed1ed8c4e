"""Grounded blurbs: "why you may like it" made only of the item's own sentences.

Each item's description and its well-rated reviews are split into sentences and embedded in
the shared space. For a (user, item) pair the sentences closest to the user's taste are
picked with maximal marginal relevance and joined verbatim, so every statement of a blurb
is traceable to the item's own data (``BlurbOutput.sources`` says where each came from):
faithfulness is 100% by construction.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_save_npy, atomic_write_json, load_npy, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError
from recgen.generators.base import BlurbOutput

_KIND = "grounded-blurbs"
# a sentence ends at . ! ? followed by space and an upper-case letter, digit or quote
# ("e.g. the" and "approx. three" stay whole; "1.5 litres" has no space after the dot)
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (whitespace normalized, empty pieces dropped)."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    return [s.strip() for s in _SPLIT.split(text) if s.strip()] if text else []


@dataclass
class GroundedBlurbConfig:
    """Settings of :class:`GroundedBlurbGenerator`.

    Attributes
    ----------
    max_sentences : int
        Sentences per blurb.
    max_chars : int
        Length cap; sentences are never cut except a single over-long first one (cut at a
        word boundary, with an ellipsis).
    min_rating : float
        Only reviews rated at least this (on the catalog's own scale) provide sentences;
        reviews without a rating are used.
    mmr_lambda : float
        Relevance vs diversity trade-off of maximal marginal relevance (1 = relevance only).
    include_description : bool
        Use the item's description sentences.
    min_words : int
        Shorter sentences are skipped.
    """

    max_sentences: int = 2
    max_chars: int = 240
    min_rating: float = 4.0
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


class GroundedBlurbGenerator:
    """Extractive, personalized blurbs with provenance (the default blurb generator)."""

    def __init__(self, config: GroundedBlurbConfig | None = None) -> None:
        self.config = config or GroundedBlurbConfig()
        self.item_ids_: list[str] | None = None

    def fit(self, items: pd.DataFrame, reviews: pd.DataFrame | None, *,
            encode: Callable[[list[str]], np.ndarray]) -> "GroundedBlurbGenerator":
        """Collect and embed every item's candidate sentences.

        Parameters
        ----------
        items : DataFrame with item_id, title, description
        reviews : DataFrame with item_id, text, rating (optional)
        encode : callable
            Texts -> unit vectors in the shared space (e.g. ``MultimodalSpace.encode_text``).
        """
        for col in ("item_id", "title"):
            if col not in items.columns:
                raise ValueError(f"items is missing column {col!r}; has {list(items.columns)}")
        c = self.config
        per_item: dict[str, list[tuple[str, str]]] = {str(i): [] for i in items["item_id"]}
        if c.include_description and "description" in items.columns:
            for item_id, desc in zip(items["item_id"].astype(str), items["description"]):
                if isinstance(desc, str):
                    per_item[item_id] += [(s, "description") for s in split_sentences(desc)]
        if reviews is not None and len(reviews):
            r = reviews.reset_index(drop=True)
            rating = pd.to_numeric(r["rating"], errors="coerce") if "rating" in r.columns else pd.Series(np.nan, index=r.index)
            ok = rating.isna() | (rating >= c.min_rating)
            for pos in np.flatnonzero(ok.to_numpy()):
                item_id = str(r.at[pos, "item_id"])
                if item_id in per_item and isinstance(r.at[pos, "text"], str):
                    per_item[item_id] += [(s, f"review:{pos}") for s in split_sentences(r.at[pos, "text"])]
        sentences, sources, ptr = [], [], [0]
        titles = dict(zip(items["item_id"].astype(str), items["title"].astype(str)))
        for item_id, cands in per_item.items():
            seen = set()
            kept = []
            for s, src in cands:
                if len(s.split()) >= c.min_words and s.lower() not in seen:
                    seen.add(s.lower())
                    kept.append((s, src))
            if not kept:  # nothing usable: the title is the one grounded statement we have
                kept = [(titles[item_id], "title")]
            sentences += [s for s, _ in kept]
            sources += [src for _, src in kept]
            ptr.append(len(sentences))
        vecs = np.asarray(encode(sentences), dtype=np.float32)
        if vecs.shape[0] != len(sentences):
            raise ValueError(f"encode returned {vecs.shape[0]} vectors for {len(sentences)} sentences")
        self.item_ids_ = list(per_item)
        self._row = {i: k for k, i in enumerate(self.item_ids_)}
        self.sentences_, self.sources_ = sentences, sources
        self.ptr_ = np.asarray(ptr, dtype=np.int64)
        self.vectors_ = vecs
        return self

    def _check(self) -> None:
        if self.item_ids_ is None:
            raise NotFittedError("GroundedBlurbGenerator is not fitted: call fit() or load() first")

    def generate(self, item_ids: Sequence[str], user_vectors: np.ndarray, *, seed: int = 0) -> BlurbOutput:
        """One blurb per (item, user vector); a zero user vector gives the neutral blurb."""
        self._check()
        item_ids = [str(i) for i in item_ids]
        users = np.asarray(user_vectors, dtype=np.float32)
        if users.ndim != 2 or len(users) != len(item_ids):
            raise ValueError(f"user_vectors must have shape ({len(item_ids)}, dim); got {users.shape}")
        if users.shape[1] != self.vectors_.shape[1]:
            raise ValueError(f"user_vectors has dim {users.shape[1]}; sentences were embedded with dim {self.vectors_.shape[1]}")
        unknown = [i for i in item_ids if i not in self._row]
        if unknown:
            raise UnknownIdError(f"{len(unknown)} item ids have no sentences (not in the fitted items), e.g. {unknown[:5]}")
        rng = np.random.default_rng(seed)
        texts, sources = [], []
        for item_id, u in zip(item_ids, users):
            k = self._row[item_id]
            lo, hi = int(self.ptr_[k]), int(self.ptr_[k + 1])
            picks = self._pick(self.vectors_[lo:hi], u, rng)
            text, used = self._join([self.sentences_[lo + p] for p in picks])
            texts.append(text)
            sources.append([self.sources_[lo + p] for p in picks[:used]])
        return BlurbOutput(texts=texts, sources=sources, item_ids=item_ids)

    def _pick(self, vecs: np.ndarray, user: np.ndarray, rng) -> list[int]:
        c = self.config
        n = len(vecs)
        sim = vecs @ vecs.T
        if not np.any(user):
            # neutral: description order first, then the most central sentence
            rel = sim.mean(axis=1)
            rel[0] += 10.0
        else:
            rel = vecs @ user
        rel = rel + rng.uniform(0, 1e-9, n)  # the seed only breaks exact ties
        chosen: list[int] = []
        while len(chosen) < min(c.max_sentences, n):
            penalty = sim[:, chosen].max(axis=1) if chosen else np.zeros(n)
            score = c.mmr_lambda * rel - (1 - c.mmr_lambda) * penalty
            score[chosen] = -np.inf
            chosen.append(int(np.argmax(score)))
        return chosen

    def _join(self, sentences: list[str]) -> tuple[str, int]:
        c = self.config
        out, used = "", 0
        for s in sentences:
            candidate = f"{out} {s}".strip()
            if len(candidate) > c.max_chars:
                if not out:  # a single over-long sentence: cut at a word boundary
                    cut = s[: c.max_chars - 1].rsplit(" ", 1)[0]
                    out, used = cut + "…", 1
                break
            out, used = candidate, used + 1
        return (out[:1].upper() + out[1:]), used

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
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
    def load(cls, directory: str | Path) -> "GroundedBlurbGenerator":
        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND)
        try:
            gen = cls(GroundedBlurbConfig(**manifest["config"]["grounded"]))
            payload = json.loads((directory / "sentences.json").read_text())
            gen.item_ids_ = list(payload["item_ids"])
            gen.sentences_, gen.sources_ = list(payload["sentences"]), list(payload["sources"])
            gen.ptr_ = np.asarray(payload["ptr"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}: invalid grounded-blurb files: {exc}") from exc
        gen.vectors_ = load_npy(directory / "vectors.npy")
        gen._row = {i: k for k, i in enumerate(gen.item_ids_)}
        if len(gen.vectors_) != len(gen.sentences_) or gen.ptr_[-1] != len(gen.sentences_):
            raise ArtifactError(f"{directory}: sentences and vectors do not match")
        return gen
