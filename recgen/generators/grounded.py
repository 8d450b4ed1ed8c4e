"""Grounded blurbs: "why you may like it", built only from facts in the data.

For a (user, item) pair the blurb links the item to a *named* item of the user's own history
through attribute values both items carry, then adds at most one or two supporting sentences of
the item's own description or positive reviews, picked for the user's taste::

    You picked the teal checkered mug; this mug has the same checkered pattern, in navy.
    It is made of ceramic and just right for morning coffee or tea.

How each part is grounded (``BlurbOutput.sources`` lists one entry per clause, in order):

* ``"history:<item_id>"``: "You picked <title>", the history item's own title;
* ``"history:<item_id>:<attribute>"`` and ``"attribute:<attribute>"``: a value both items have
  ("the same checkered pattern"), read from each item's ``attributes``;
* ``"attribute:<attribute>"``: the item's own value ("this mug", ", in navy");
* ``"description"`` / ``"review:<label>"``: a verbatim sentence of the item's description or of
  the review with that row label, or the sentence's last clause (below). Review sentences are
  quoted (``A reviewer writes: "..."``).

The only words the templates add are :data:`TEMPLATE_WORDS` (verbs such as "picked" and the
attribution "reviewer writes") plus stop words; none states a fact, so faithfulness
(:func:`recgen.evaluation.generation.faithfulness` with ``connectives=TEMPLATE_WORDS``) is 1.0
by construction, and checking each blurb against the text of only the sources it cites is a
stricter test that can still fail.

Rules:

* A review sentence is a candidate only when its review is rated at least
  ``min_rating_for_review_sentences`` *and* the sentence itself is praise by VADER
  (:class:`~recgen.generators.sentiment.PraiseFilter`): "The zipper broke after a week." in a
  5-star review is never quoted.
* The history item named (the *anchor*) is the one sharing the most informative attribute
  values with the item (sum of inverse document frequencies over the catalog; values carried
  by more than ``max_link_share`` of the items, or numbers such as years, do not link); ties go
  to the history item closest to the user's taste, then to the seed. Each row depends only on
  its own item, user vector and history.
* No fact twice: a supporting sentence that restates a value the blurb already stated (the
  colour the link named, say) is skipped, or only its last clause is quoted when that clause
  reads on its own and restates nothing ("Made from glass, it is just right for tea." after
  "the same glass material" quotes "It is just right for tea.").
* After a history link (or for any user with a taste), sentences that say nothing about the
  item in particular (no fact of it, and the same words are said of other kinds of items:
  "Really happy with this mug.") are quoted only when nothing else is left.
* A neutral or unknown user (zero vector, no history) gets the non-personal blurb: the first
  description sentence, then the most typical positive review sentences (word-level
  centrality among the item's sentences: what most reviews say; or, with
  ``neutral_consensus="rouge"``, the sentence with the highest mean ROUGE-L F against the
  item's other reviews, a minimum-Bayes-risk choice).

Two levels of API: the generator contract (:class:`~recgen.generators.base.BlurbGenerator`)

>>> gen = GroundedBlurbGenerator().fit(GenerationContext(model, catalog))
>>> out = gen.generate(GenerationContext(model), ["sku-1"], ["U0001"])
>>> out.anchors[0]                                         # the history item named, or None
>>> gen.explain(GenerationContext(model), ["sku-1"], ["U0001"])[0].shared   # {"pattern": ["checkered"]}

and the frames and vectors underneath it:

>>> gen = GroundedBlurbGenerator().fit_frames(items, reviews, encode=space.encode_text)
>>> out = gen.generate_vectors(["sku-1"], taste[None], histories=[["sku-7"]])   # zeros = neutral
"""
from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from recgen._io import atomic_save_npy, atomic_write_json, load_npy, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, NotFittedError, UnknownIdError
from recgen.generators.base import BlurbOutput, title_parts
from recgen.generators.context import GenerationContext, output_user_ids, paired
from recgen.generators.sentiment import PraiseFilter

_KIND = "grounded-blurbs"
DESCRIPTION, TITLE = "description", "title"
HISTORY, ATTRIBUTE, REVIEW = "history", "attribute", "review"

#: Every word the templates add that is not a stop word. None of them states a fact about an
#: item (a test checks that none is an attribute value of the sample catalog or a MovieLens genre).
TEMPLATE_WORDS = frozenset({"picked", "bought", "viewed", "rated", "liked", "reviewer", "reviewers", "writes",
                            "write"})
#: How an interaction event reads in "You <verb> <title>"; any other event reads "picked".
EVENT_VERBS = {"purchase": "bought", "view": "viewed", "rating": "rated"}
_DEFAULT_VERB = "picked"
#: Rated interactions read "You liked <title>" when :meth:`GroundedBlurbGenerator.fit` sees a
#: ``ProfileConfig.like_threshold`` at least this high (the default: 4 and up of 5), since the
#: blurb names only items the user rated that high; below it they read "You rated <title>".
LIKED_FROM = 0.75
# A sentence opening with one of these leans on the sentence before it ("He is turning 15."):
# it is not quoted on its own.
_DANGLING = frozenset("he she they his her their him them and but so then later meanwhile also".split())
# A clause after one of these breaks ("Made from glass, it is just right for tea.") that opens
# with one of these words reads on its own; see :func:`_tail_clause`.
_CLAUSE_BREAK = re.compile(r"(?:,|;|\s+-)\s+(?:(?:and|but|so)\s+)?")
_TAIL_OPENERS = frozenset("it it's its this i i'm i've i'd we you the".split())
_NUMERIC = re.compile(r"[\d\s.,:/+-]*")
_WORDS = re.compile(r"[a-z0-9]+")

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



def anchor_of(sources: Sequence[str]) -> str | None:
    """The history item a blurb names, read from its ``sources`` (``None`` when it names none).

    For outputs that carry only texts and sources (e.g. ``ContentGenerator.generate``, whose
    cache keeps those two): ``anchor_of(out.sources[i])``.
    """
    for s in sources:
        if s.startswith(HISTORY + ":"):
            rest = s[len(HISTORY) + 1:]
            return rest if s.count(":") == 1 else rest.rsplit(":", 1)[0]
    return None


def parse_attributes(value: Any) -> dict[str, str]:
    """An ``attributes`` cell (dict, JSON object string, None/NaN) as ``{name: value}`` of non-empty strings."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    out = {}
    for k, v in value.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        v = " ".join(str(v).split())
        if v:
            out[str(k)] = v
    return out


def _stem(w: str) -> str:
    return w[:-1] if w.endswith("s") and len(w) > 3 else w


def _stems(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORDS.findall(text.lower()))


def _values(value: str) -> list[str]:
    """Display values of one attribute: "Action, Comedy" is two values."""
    return [v.strip() for v in value.split(",") if v.strip()] if ", " in value else [value]


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _tail_clause(sentence: str, min_words: int) -> str | None:
    """The longest ending of the sentence that reads on its own as a clause, or ``None``.

    Used when the sentence's opening restates what the blurb already said: "Made from glass,
    it is just right for morning coffee." after "... the same glass material" quotes only
    "it is just right for morning coffee." The clause must follow a comma, semicolon or dash
    (and an optional "and" / "but" / "so"), open with a word that needs nothing before it
    ("it", "this", "I", "the", ...; never "he" or "they") and have at least ``min_words + 1``
    words. It is a verbatim piece of the sentence, so it is as faithful as the sentence.

    >>> _tail_clause("The ceramic build is sturdy, and it holds a bunch of flowers.", 3)
    'it holds a bunch of flowers.'
    >>> _tail_clause("I bought it for my son, he loves it.", 3) is None
    True
    """
    best = None
    for m in _CLAUSE_BREAK.finditer(sentence):
        tail = sentence[m.end():]
        words = tail.split()
        if len(words) > min_words and words[0].lower().strip("\"'") in _TAIL_OPENERS:
            best = tail  # the longest such clause: the first break that qualifies
            break
    return best


def _typicality(sentences: list[str], ptr: np.ndarray) -> np.ndarray:
    """Each sentence's mean cosine (word counts) to the other sentences of its item, float64 (n,).

    The neutral blurb quotes the item's most typical statements: the words most of its
    reviews share (a consensus pick, as in centroid/LexRank summarization).
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    out = np.zeros(len(sentences))
    if not sentences:
        return out
    try:
        x = normalize(CountVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform(sentences).astype(np.float64))
    except ValueError:  # no word at all
        return out
    for k in range(len(ptr) - 1):
        lo, hi = int(ptr[k]), int(ptr[k + 1])
        if hi - lo > 1:
            block = x[lo:hi]
            sims = np.asarray((block @ block.T).sum(axis=1)).ravel() - np.asarray(block.multiply(block).sum(axis=1)).ravel()
            out[lo:hi] = sims / (hi - lo - 1)
    return out


@lru_cache(maxsize=1 << 16)
def _porter(word: str) -> str:
    """Porter stem of one lower-case word, as ROUGE stems it (words of 3 letters or fewer stay)."""
    if len(word) <= 3:
        return word
    from nltk.stem import porter  # installed with rouge-score

    return porter.PorterStemmer("ORIGINAL_ALGORITHM").stem(word)


def _tokens(text: str) -> list[str]:
    """Lower-case alphanumeric words, Porter-stemmed: how ROUGE reads a text."""
    return [_porter(w) for w in _WORDS.findall(text.lower())]


def _lcs(masks: dict[str, int], m: int, other: Sequence[str]) -> int:
    """Length of the longest common subsequence of a token list ``a`` (given as ``masks``:
    token -> bit set of its positions in ``a``, ``m = len(a)``) and ``other``.

    Bit-parallel (Hyyro 2004): one big-integer step per token of ``other``, so a sentence
    against a whole review costs microseconds instead of an ``m x n`` table.
    """
    full = (1 << m) - 1
    v = full
    for w in other:
        bits = masks.get(w)
        if bits:
            u = v & bits
            v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


def _masks(tokens: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, w in enumerate(tokens):
        out[w] = out.get(w, 0) | (1 << i)
    return out


def _consensus(sentences: list[str], sources: list[str], ptr: np.ndarray,
               references: list[list[tuple[str, str]]]) -> np.ndarray:
    """Each sentence's expected agreement with what the item's reviews say, float64 (n,).

    Minimum-Bayes-risk selection: the item's reviews (every rating; the text says what buyers
    write about it) are samples of "a review of this item", and a sentence's score is its mean
    ROUGE-L F (longest common subsequence of Porter-stemmed words, F with beta 1) against
    them, leaving out the review the sentence comes from. The neutral blurb quotes the
    sentence that agrees most with the other reviews: a consensus pick that also prefers a
    sentence long enough to say something. An item with no other review compares its
    sentences with one another instead; a single sentence scores 0.

    Parameters
    ----------
    sentences, sources : lists of str, length n
        Candidate sentences of every item, item after item, and their sources.
    ptr : ndarray of int64, shape (n_items + 1,)
    references : list of n_items lists of (source, text)
        Each item's reviews, as ``("review:<label>", text)``.
    """
    out = np.zeros(len(sentences))
    for k in range(len(ptr) - 1):
        lo, hi = int(ptr[k]), int(ptr[k + 1])
        refs = [(src, _tokens(t)) for src, t in references[k]]
        refs = [(src, t) for src, t in refs if t]
        own = [(src, _tokens(s)) for src, s in zip(sources[lo:hi], sentences[lo:hi])]
        for j, (src, toks) in enumerate(own):
            if not toks:
                continue
            others = [t for r, t in refs if r != src]
            if not others:  # no other review: agreement with the item's other sentences
                others = [t for i, (_, t) in enumerate(own) if i != j and t]
            if not others:
                continue
            masks, m = _masks(toks), len(toks)
            total = 0.0
            for ref in others:
                lcs = _lcs(masks, m, ref)
                total += 2.0 * lcs / (m + len(ref))  # F1 of precision lcs/m and recall lcs/len(ref)
            out[lo + j] = total / len(others)
    return out


def _title_phrase(title: str) -> str:
    """"Teal checkered mug" -> "the teal checkered mug"; proper names ("Toy Story (1995)") stay as they are,
    except that a library-style trailing article moves to the front: "Usual Suspects, The (1995)" ->
    "The Usual Suspects (1995)" (the same words, so the clause stays traceable to the title)."""
    name, year = title_parts(title)
    spoken = f"{name} ({year})" if year else name
    if spoken != " ".join(title.split()):  # a trailing article moved to the front
        return spoken
    words = title.split()
    if len(words) >= 2 and words[0][:1].isupper() and words[0][1:].islower() \
            and all(re.fullmatch(r"[a-z][a-z-]*", w) for w in words[1:]):
        return "the " + words[0].lower() + " " + " ".join(words[1:])
    return title


@dataclass
class GroundedBlurbConfig:
    """Settings of :class:`GroundedBlurbGenerator`.

    Attributes
    ----------
    max_sentences : int
        Supporting sentences of a blurb that names no history item.
    max_support : int
        Supporting sentences after the history link (0: the link alone).
    max_chars : int
        Length cap. Blurbs are cut at sentence boundaries only: a sentence that would not
        fit is never picked (nor is a link sentence longer than the cap). Only when not even
        one of the item's sentences fits is the best one cut at a word boundary (ending in "...").
        The default leaves room for a history link (60-100 characters) and one synopsis-length
        sentence: at 240, 39% of MovieLens users' blurbs were the link alone, at 340 14%.
    min_rating_for_review_sentences : float
        Only reviews rated at least this (on the catalog's own scale) provide sentences.
        When ``reviews`` has no rating at all (no column, or every value missing) every
        review is used; otherwise a review with a missing rating is not.
    min_praise : float
        VADER compound score a review sentence needs to be quoted
        (:class:`~recgen.generators.sentiment.PraiseFilter`); ``None`` turns the sentence-level
        filter off (the rating alone decides).
    mmr_lambda : float
        Relevance vs diversity trade-off of maximal marginal relevance, in [0, 1]
        (1 = relevance only): ``score = lambda * rel - (1 - lambda) * max_sim_to_picked``.
    include_description : bool
        Use the item's description sentences.
    min_words : int
        Shorter sentences ("Love it!") are not candidates.
    link_history : bool
        Name a history item that shares attribute values with the item.
    max_shared : int
        Shared attributes the link names (the most informative first).
    max_link_share : float
        An attribute value carried by more than this share of the catalog's items is too
        common to link two items ("division: General").
    link_attributes : tuple of str or None
        Attributes that may link items; ``None``: every attribute whose value is text (numbers
        such as years and runtimes never link).
    noun_attributes : tuple of str
        Attributes whose value names the kind of item ("mug"): used as the noun ("this mug"),
        and repeating it in a supporting sentence does not count as a repeated fact.
    contrast_attributes : tuple of str
        Attributes the link may contrast when the two items differ (", in navy").
    neutral_consensus : {"words", "rouge"}
        How the neutral blurb ranks an item's sentences. ``"words"``: mean cosine of word
        counts to the item's other sentences (centrality). ``"rouge"``: minimum-Bayes-risk
        choice, the mean ROUGE-L F against the item's other reviews (at most
        ``max_consensus_reviews`` of them, every rating), leaving out the sentence's own review.
        On held-out clothing reviews ``"rouge"`` scored lower (benchmarks/RESULTS.md).
    max_consensus_reviews : int
        Reviews per item that ``"rouge"`` compares each sentence with (the first ones), which
        bounds the fit time of items with thousands of reviews.
    """

    max_sentences: int = 2
    max_support: int = 1
    max_chars: int = 340
    min_rating_for_review_sentences: float = 4.0
    min_praise: float | None = 0.3
    mmr_lambda: float = 0.7
    include_description: bool = True
    min_words: int = 3
    link_history: bool = True
    max_shared: int = 2
    max_link_share: float = 0.5
    link_attributes: tuple[str, ...] | None = None
    noun_attributes: tuple[str, ...] = ("category", "class")
    contrast_attributes: tuple[str, ...] = ("colour", "color", "pattern")
    neutral_consensus: str = "words"
    max_consensus_reviews: int = 50

    def __post_init__(self) -> None:
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1; got {self.max_sentences}")
        if self.max_support < 0:
            raise ValueError(f"max_support must be >= 0; got {self.max_support}")
        if self.max_chars < 20:
            raise ValueError(f"max_chars must be >= 20; got {self.max_chars}")
        if not 0 <= self.mmr_lambda <= 1:
            raise ValueError(f"mmr_lambda must be in [0, 1]; got {self.mmr_lambda}")
        if self.min_words < 1:
            raise ValueError(f"min_words must be >= 1; got {self.min_words}")
        if self.max_shared < 1:
            raise ValueError(f"max_shared must be >= 1; got {self.max_shared}")
        if not 0 < self.max_link_share <= 1:
            raise ValueError(f"max_link_share must be in (0, 1]; got {self.max_link_share}")
        if self.min_praise is not None and not -1 <= self.min_praise <= 1:
            raise ValueError(f"min_praise must be in [-1, 1] or None; got {self.min_praise}")
        if self.neutral_consensus not in ("words", "rouge"):
            raise ValueError(f"neutral_consensus must be 'words' or 'rouge'; got {self.neutral_consensus!r}")
        if self.max_consensus_reviews < 1:
            raise ValueError(f"max_consensus_reviews must be >= 1; got {self.max_consensus_reviews}")
        # JSON round trips give lists: keep the fields hashable tuples
        for name in ("link_attributes", "noun_attributes", "contrast_attributes"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, tuple(str(x) for x in v))


@dataclass
class Explanation:
    """One blurb with what it links to (:meth:`GroundedBlurbGenerator.explain`).

    Attributes
    ----------
    item_id, user_id : str
        The pair (``""`` for the neutral user).
    text : str
        The blurb.
    anchor : str or None
        The history item the blurb names ("You picked ..."), or ``None``.
    shared : dict of str to list of str
        The attribute values the item shares with ``anchor`` (the item's spelling), e.g.
        ``{"pattern": ["checkered"]}``; empty without an anchor.
    sources : list of str
        Provenance of each clause (see the module docstring).
    """

    item_id: str
    user_id: str
    text: str
    anchor: str | None
    shared: dict[str, list[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


class GroundedBlurbGenerator:
    """Blurbs that name a history item and quote only the data (registry name ``"grounded"``, the default).

    Parameters
    ----------
    config : GroundedBlurbConfig, optional

    Attributes
    ----------
    item_ids_ : list of str
        Fitted items, in the order of ``items``.
    titles_ : list of str
        Each item's title.
    attributes_ : list of dict of str to str
        Each item's attributes, as in the catalog.
    verb_ : str
        How the catalog's interactions read ("picked", or "bought"/"viewed"/"rated" when
        every interaction is that event; "liked" for ratings fitted by :meth:`fit`, see
        :data:`LIKED_FROM`).
    sentences_ : list of str
        Candidate sentences of every item, item after item (``ptr_`` delimits them):
        description sentences and review sentences that passed the rating and praise checks.
    sources_ : list of str
        Provenance of each sentence: ``"description"``, ``"review:<index>"`` (the label of
        the review's row in the ``reviews`` frame given to :meth:`fit`) or ``"title"`` (the
        fallback for items with no usable sentence).
    ptr_ : ndarray of int64, shape (n_items + 1,)
        Item ``k``'s sentences are ``sentences_[ptr_[k]:ptr_[k + 1]]``.
    vectors_ : ndarray of float32, shape (n_sentences, dim)
        Unit sentence vectors in the shared space.
    typicality_ : ndarray of float64, shape (n_sentences,)
        Each sentence's consensus score (``config.neutral_consensus``): word-level centrality
        among its item's sentences, or mean ROUGE-L F against the item's other reviews. The
        neutral blurb's order of preference.
    """

    kind = "blurb"

    def __init__(self, config: GroundedBlurbConfig | None = None) -> None:
        self.config = replace(config) if config is not None else GroundedBlurbConfig()
        self.item_ids_: list[str] | None = None

    # ------------------------------------------------------------ the contract
    def fit(self, context: GenerationContext, *, progress: bool = False) -> "GroundedBlurbGenerator":
        """Collect and embed the catalog's sentences and item facts (:meth:`fit_frames`).

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
        self.fit_frames(catalog.items, catalog.reviews, encode=context.encode_text, interactions=catalog.interactions)
        if self.verb_ == EVENT_VERBS["rating"] and context.model.profiles.config.like_threshold >= LIKED_FROM - 1e-9:
            self.verb_ = "liked"  # generate names only history items the user rated at least that high
        return self

    def generate(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> BlurbOutput:
        """One blurb per (item, user) pair, for the user's taste vector and history in ``context``.

        Parameters
        ----------
        context : GenerationContext
            The model whose space the sentences were embedded in; the users' histories come
            from ``context.user_histories(..., liked=True)`` (the catalog's interactions when it
            has a catalog, else the model's profiles; an item the user rated low is never named).
        item_ids : sequence of str
        user_ids : sequence of str or None
            ``None`` or an unknown user: the neutral blurb.
        seed : int
            Breaks exact score ties (per pair, whatever the batch).

        Returns
        -------
        BlurbOutput
            With each clause's provenance in ``sources`` and the named history item in ``anchors``.

        Raises
        ------
        UnknownIdError
            An item is not in the model, or was not in the catalog at fit.
        """
        return self._generate(context, item_ids, user_ids, seed)[0]

    def explain(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                seed: int = 0) -> list[Explanation]:
        """:meth:`generate`, one :class:`Explanation` per pair: the text, the history item it names
        and the attribute values the two share (e.g. for a "goes with what you have" preview
        showing the same history item)."""
        out, shared = self._generate(context, item_ids, user_ids, seed)
        return [Explanation(i, u, t, a, s, src) for i, u, t, a, s, src in
                zip(out.item_ids, out.user_ids, out.texts, out.anchors, shared, out.sources)]

    def _generate(self, context, item_ids, user_ids, seed):
        self._check()
        item_ids, user_ids = paired(item_ids, user_ids)
        context.item_rows(item_ids)  # an id the model does not know is named as such
        histories = context.user_histories(user_ids, liked=True) if self.config.link_history else None
        return self._rows(item_ids, context.user_vectors(user_ids), histories, seed, output_user_ids(user_ids))

    # ------------------------------------------------------- on frames and vectors
    def fit_frames(self, items: pd.DataFrame, reviews: pd.DataFrame | None, *,
                   encode: Callable[[list[str]], np.ndarray],
                   interactions: pd.DataFrame | None = None) -> "GroundedBlurbGenerator":
        """Collect and embed every item's candidate sentences; keep every item's title and attributes.

        Parameters
        ----------
        items : DataFrame
            Columns ``item_id``, ``title``, optional ``description`` and ``attributes``
            (dicts or JSON object strings). Include the items of the users' histories: a
            history item is named only if it was fitted.
        reviews : DataFrame or None
            Columns ``item_id``, ``text``, optional ``rating``. Reviews of items not in
            ``items`` are ignored.
        encode : callable
            ``list[str] -> ndarray (n, dim)``: the shared space's text encoder (the space the
            user taste vectors live in), e.g. ``MultimodalSpace.encode_text``.
        interactions : DataFrame, optional
            Only its ``event`` column is read, for the verb of "You <verb> <title>".

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
        # every review, whatever its rating: what buyers say about the item ("rouge" consensus)
        said: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
        if reviews is not None and len(reviews):
            _require(reviews, "reviews", ("item_id", "text"))
            if c.neutral_consensus == "rouge":
                for label, item_id, text in zip(reviews.index, reviews["item_id"].astype(str), reviews["text"]):
                    if item_id in said and isinstance(text, str):
                        said[item_id].append((f"{REVIEW}:{label}", text))
            keep = self._positive(reviews)
            sub = reviews[keep]
            praise = PraiseFilter(c.min_praise) if c.min_praise is not None else None
            for label, item_id, text in zip(sub.index, sub["item_id"].astype(str), sub["text"]):
                if item_id in per_item:
                    per_item[item_id] += [(s, f"{REVIEW}:{label}") for s in split_sentences(text)
                                          if praise is None or praise.is_praise(s)]
        sentences: list[str] = []
        sources: list[str] = []
        ptr = [0]
        titles = [" ".join(str(t).split()) if isinstance(t, str) else "" for t in items["title"]]
        for item_id, title in zip(ids, titles):
            seen: set[str] = set()
            kept = []
            for s, src in per_item[item_id]:
                key = s.lower()
                if len(s.split()) >= c.min_words and key not in seen:
                    seen.add(key)
                    kept.append((s, src))
            if not kept:  # nothing usable: the title is the one grounded statement we have
                kept = [(title or item_id, TITLE)]
            sentences += [s for s, _ in kept]
            sources += [src for _, src in kept]
            ptr.append(len(sentences))
        self.vectors_ = self._encode_unique(sentences, encode)
        self.item_ids_ = ids
        self.titles_ = titles
        self.attributes_ = [parse_attributes(a) for a in items["attributes"]] if "attributes" in items.columns \
            else [{} for _ in ids]
        self.verb_ = _DEFAULT_VERB
        if interactions is not None and "event" in interactions.columns and len(interactions):
            events = set(interactions["event"].dropna().astype(str).str.lower())
            if len(events) == 1:
                self.verb_ = EVENT_VERBS.get(events.pop(), _DEFAULT_VERB)
        self.sentences_, self.sources_ = sentences, sources
        self.ptr_ = np.asarray(ptr, dtype=np.int64)
        if c.neutral_consensus == "rouge":
            self.typicality_ = _consensus(sentences, sources, self.ptr_,
                                          [said[i][: c.max_consensus_reviews] for i in ids])
        else:
            self.typicality_ = _typicality(sentences, self.ptr_)
        self._derive()
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

    def _derive(self) -> None:
        """Lookups derived from the fitted (or loaded) state; nothing here is saved."""
        c = self.config
        self._row = {i: k for k, i in enumerate(self.item_ids_)}
        n = len(self.item_ids_)
        # linkable values per item: {attribute: {normalized value: display value}}
        self._link: list[dict[str, dict[str, str]]] = []
        counts: dict[tuple[str, str], int] = {}
        for attrs in self.attributes_:
            vals = {}
            for name, value in attrs.items():
                if (c.link_attributes is not None and name not in c.link_attributes) or _NUMERIC.fullmatch(value):
                    continue
                vals[name] = {_norm(v): v for v in _values(value)}
                for v in vals[name]:
                    counts[(name, v)] = counts.get((name, v), 0) + 1
            self._link.append(vals)
        # inverse document frequency; too common values carry no information (0)
        self._idf = {key: (math.log(n / k) if k <= c.max_link_share * n else 0.0) for key, k in counts.items()}
        # each item's informative values, for set intersections with history items
        self._keys = [frozenset((name, v) for name, vals in link.items() for v in vals if self._idf[(name, v)] > 0)
                      for link in self._link]
        # which of its item's fact values (not nouns) each sentence restates
        # and the clause that may stand for a sentence whose opening restates a fact (None: none)
        self._mentions: list[frozenset[tuple[str, str]]] = []
        self._tails: list[str | None] = []
        self._tail_mentions: list[frozenset[tuple[str, str]]] = []
        for k in range(n):
            facts = [(name, v, _stems(v)) for name, vals in self._link[k].items() if name not in c.noun_attributes
                     for v in vals]
            for s, src in zip(self.sentences_[int(self.ptr_[k]):int(self.ptr_[k + 1])],
                              self.sources_[int(self.ptr_[k]):int(self.ptr_[k + 1])]):
                stems = _stems(s)
                self._mentions.append(frozenset((name, v) for name, v, st in facts if st and st <= stems))
                tail = _tail_clause(s, c.min_words) if src != TITLE and self._mentions[-1] else None
                self._tails.append(tail)
                stems = _stems(tail) if tail else frozenset()
                self._tail_mentions.append(frozenset((name, v) for name, v, st in facts if st and st <= stems))
        self._generic, self._tail_generic = self._boilerplate(n)
        first = [(_WORDS.match(s.lower()) or [""])[0] for s in self.sentences_]
        self._leans = np.array([w in _DANGLING for w in first], dtype=bool)
        # a sentence continues the one before it (same description or review)
        self._follows = np.array([p > 0 and self.sources_[p] == self.sources_[p - 1] for p in range(len(self.sources_))],
                                 dtype=bool)
        # an item's taste direction: its sentences' mean (for choosing between equally linked items)
        sums = np.add.reduceat(self.vectors_, self.ptr_[:-1].astype(np.intp), axis=0)
        self._item_vecs = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    def _boilerplate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Which sentences (and tail clauses) say nothing about their item in particular.

        Such a sentence states none of its item's facts, and the same words (the item's noun
        masked: "really happy with this <noun>") are said of items of another kind too; an item
        with no noun attribute is a kind of its own. A personal blurb quotes one only when
        nothing better is left: "Really happy with this mug." after every link tells no one why.
        """
        c = self.config
        nouns = [frozenset(_stem(w) for name, vals in self.attributes_[k].items() if name in c.noun_attributes
                           for v in _values(vals) for w in _WORDS.findall(v.lower())) for k in range(n)]
        kinds: list[Any] = [tuple(sorted(nn)) if nn else ("item", k) for k, nn in enumerate(nouns)]
        rows = np.repeat(np.arange(n), np.diff(self.ptr_))

        def key(k: int, text: str | None) -> str | None:
            if text is None:
                return None
            words = ["<noun>" if _stem(w) in nouns[k] else w for w in _WORDS.findall(text.lower())]
            # a noun of several words ("t-shirt", "coffee table") is one "<noun>", as "mug" is
            return " ".join(w for j, w in enumerate(words) if w != "<noun>" or j == 0 or words[j - 1] != "<noun>")

        keys = [key(int(k), t) for k, t in zip(rows, self.sentences_)]
        tail_keys = [key(int(k), t) for k, t in zip(rows, self._tails)]
        seen: dict[str, set] = {}
        for k, a, b in zip(rows, keys, tail_keys):
            for x in {a, b} - {None}:
                seen.setdefault(x, set()).add(kinds[int(k)])
        generic = np.array([not m and len(seen[x]) > 1 for m, x in zip(self._mentions, keys)], dtype=bool)
        tail_generic = np.array([x is not None and not m and len(seen[x]) > 1
                                 for m, x in zip(self._tail_mentions, tail_keys)], dtype=bool)
        return generic, tail_generic

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self.item_ids_ is None:
            raise NotFittedError("GroundedBlurbGenerator is not fitted: call fit() or load() first")

    def generate_vectors(self, item_ids: Sequence[str], user_vectors: np.ndarray, *, seed: int = 0,
                         user_ids: Sequence[str] | None = None,
                         histories: Sequence[Sequence[str]] | None = None) -> BlurbOutput:
        """One blurb per (item, user vector, history) triple.

        Parameters
        ----------
        item_ids : sequence of str, length n
        user_vectors : ndarray of float, shape (n, dim)
            Taste vectors in the space the sentences were embedded in. An all-zero row with
            an empty history is the neutral user: the item's first description sentence, then
            its most typical review sentence(s).
        seed : int
            Only breaks exact score ties; the output is otherwise deterministic.
        user_ids : sequence of str, optional
            Copied to ``BlurbOutput.user_ids``.
        histories : sequence of n sequences of str, optional
            Item ids each user interacted with (any order); ``None``: no history links. A
            generator fitted by :meth:`fit` on rated interactions says "You liked <title>":
            pass only items the user liked, ``GenerationContext.user_histories(..., liked=True)``.

        Returns
        -------
        BlurbOutput
            ``texts[i]``; ``sources[i]`` gives each clause's provenance, in order;
            ``anchors[i]`` the history item named (or ``None``).

        Raises
        ------
        UnknownIdError
            Some item ids were not fitted (the message names them).
        ValueError
            ``user_vectors`` has the wrong shape, or ``user_ids`` / ``histories`` the wrong length.
        """
        return self._rows(item_ids, user_vectors, histories, seed, user_ids)[0]

    def _rows(self, item_ids, user_vectors, histories, seed, user_ids):
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
        if histories is not None:
            if isinstance(histories, str) or len(histories) != len(item_ids):
                raise ValueError(f"histories must have one list of item ids per item id ({len(item_ids)}); "
                                 f"got {len(histories) if not isinstance(histories, str) else 'a str'}")
        texts, sources, anchors, shared = [], [], [], []
        for j, (item_id, u) in enumerate(zip(item_ids, users)):
            hist = histories[j] if histories is not None and self.config.link_history else ()
            text, src, anchor, common = self._blurb(item_id, u, hist, seed)
            texts.append(text)
            sources.append(src)
            anchors.append(anchor)
            shared.append(common)
        out = BlurbOutput(texts=texts, sources=sources, item_ids=item_ids, anchors=anchors,
                          user_ids=[str(u) for u in user_ids] if user_ids is not None else [])
        return out, shared

    def _rng(self, seed: int, item_id: str) -> np.random.Generator:
        return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(item_id.encode())])

    def _anchor(self, k: int, item_id: str, user: np.ndarray, history: Sequence[str], seed: int):
        """(history row, {attribute: [normalized shared values]}) of the best-linked history item, or None."""
        own = self._keys[k]
        if not own:
            return None
        cands = []
        for h in dict.fromkeys(str(x) for x in history):
            r = self._row.get(h)
            if r is not None and r != k:
                both = own & self._keys[r]
                if both:
                    cands.append((h, r, both))
        if not cands:
            return None
        # information first (rounded: set order must not matter), then closeness to the user's taste
        info = np.round([sum(self._idf[x] for x in both) for _, _, both in cands], 9)
        rel = np.round(self._item_vecs[[r for _, r, _ in cands]] @ user, 6)
        top = np.flatnonzero(info == info.max())
        top = top[rel[top] == rel[top].max()]
        if len(top) > 1:  # exact ties: sorted by id (history order may vary), then the seed
            top = sorted(top, key=lambda j: cands[j][0])
            j = top[int(self._rng(seed, item_id).integers(len(top)))]
        else:
            j = int(top[0])
        _, r, both = cands[j]
        common = {name: [v for v in vals if (name, v) in both] for name, vals in self._link[k].items()}
        return r, {name: vals for name, vals in common.items() if vals}

    def _by_information(self, common: dict[str, list[str]]) -> list[str]:
        """Shared attribute names, the most informative first (summed IDF of the shared values)."""
        return sorted(common, key=lambda n: -sum(self._idf[(n, v)] for v in common[n]))

    def _link_sentence(self, k: int, r: int, common: dict[str, list[str]], leave_out: str | None = None):
        """("You picked ...; this ... has the same ...", sources, stated fact keys, shared display values).

        ``leave_out`` names a shared attribute the sentence does not state (it stays in the
        shared values): the item's own text then may say it.
        """
        c = self.config
        hid = self.item_ids_[r]
        own = self._link[k]
        nouns = [n for n in c.noun_attributes if n in own and len(own[n]) == 1]
        noun = nouns[0] if nouns else None
        noun_value = next(iter(own[noun].values())) if noun else None
        ranked = self._by_information(common)
        facts = [n for n in ranked if n not in c.noun_attributes and n != leave_out][: c.max_shared]
        title = self.titles_[r] or hid
        sources = [f"{HISTORY}:{hid}"]
        if facts:
            subject = f"this {noun_value}" if noun else "this one"
            if noun:
                sources.append(f"{ATTRIBUTE}:{noun}")
            parts = []
            for n in facts:
                vals = [own[n][v] for v in common[n]]
                name = n.replace("_", " ")
                if len(vals) == 1 and name.endswith("s") and len(name) > 3:
                    name = name[:-1]  # "the same Comedy genre"
                parts.append(f"{_join(vals)} {name}")
                sources += [f"{HISTORY}:{hid}:{n}", f"{ATTRIBUTE}:{n}"]
            clause = f"{subject} has the same {_join(parts)}"
        else:  # only the kind of item is shared
            n = [m for m in ranked if m in c.noun_attributes][0]
            value = own[n][common[n][0]]
            clause = f"this one is also {_article(value)} {value}"
            sources += [f"{HISTORY}:{hid}:{n}", f"{ATTRIBUTE}:{n}"]
        stated = {(n, v) for n in facts for v in common[n]}
        theirs = self._link[r]
        for n in c.contrast_attributes:  # one contrast, when the two differ
            if n in own and n not in common and len(own[n]) == 1:
                v = next(iter(own[n]))
                if theirs.get(n) and v in theirs[n]:
                    continue
                shown = own[n][v]
                clause += f", in {shown}" if n in ("colour", "color") else f", with {_article(shown)} {shown} {n}"
                sources.append(f"{ATTRIBUTE}:{n}")
                stated.add((n, v))
                break
        shared = {n: [own[n][v] for v in common[n]] for n in common}
        return f"You {self.verb_} {_title_phrase(title)}; {clause}.", sources, stated, shared

    def _blurb(self, item_id: str, user: np.ndarray, history: Sequence[str], seed: int):
        c = self.config
        k = self._row[item_id]
        lo, hi = int(self.ptr_[k]), int(self.ptr_[k + 1])
        link = self._anchor(k, item_id, user, history, seed) if len(history) else None
        head, head_src, stated, shared, anchor = "", [], set(), {}, None
        if link is not None:
            head, head_src, stated, shared = self._link_sentence(k, *link)
            if len(head) > c.max_chars:
                head, head_src, stated, shared = "", [], set(), {}
            else:
                anchor = self.item_ids_[link[0]]
        n_support = c.max_support if head else c.max_sentences
        picks, trimmed = self._support(item_id, lo, hi, user, seed, n_support, stated,
                                       c.max_chars - (len(head) + 1 if head else 0), allow_cut=not head)
        if head and n_support and self._weak(lo, picks, trimmed):
            # every sentence of the item restates a fact the link states ("It is made of ceramic and
            # ..." after "the same ceramic material"), so only boilerplate or nothing was left: when the
            # link states two or more facts, one of them may be left to the item's own sentence
            linked = [n for n in self._by_information(link[1]) if any(n == m for m, _ in stated)][::-1]
            for name in linked if len(linked) >= 2 else ():  # the least informative first
                alt = self._link_sentence(k, *link, leave_out=name)
                if len(alt[0]) > c.max_chars:
                    continue
                alt_picks, alt_trimmed = self._support(item_id, lo, hi, user, seed, n_support, alt[2],
                                                       c.max_chars - len(alt[0]) - 1, allow_cut=False)
                if not self._weak(lo, alt_picks, alt_trimmed) and self._says_more(k, lo, alt_picks, alt_trimmed):
                    (head, head_src, stated, shared), picks, trimmed = alt, alt_picks, alt_trimmed
                    break
        if picks and picks[0] < 0:  # nothing fits: the most relevant sentence, cut at a word boundary
            p = -picks[0] - 1
            cut = self.sentences_[lo + p][: c.max_chars - 3].rsplit(" ", 1)[0].rstrip(",;:")
            return _capitalize(cut + "..."), [self.sources_[lo + p]], None, {}
        text = " ".join(([head] if head else []) + self._render(lo, picks, trimmed))
        return text, head_src + [self.sources_[lo + p] for p in picks], anchor, shared

    def _says_more(self, k: int, lo: int, picks: list[int], trimmed: set[int]) -> bool:
        """Whether the quoted text says more than the item's facts: at least ``min_words`` words that
        are no attribute value ("It is made of ceramic and just right for morning coffee." does;
        "A red lamp." does not)."""
        facts = frozenset().union(*(_stems(v) for vals in self.attributes_[k].values() for v in _values(vals)))
        words = [w for p in picks for w in _WORDS.findall(self._said(lo, p, trimmed).lower())]
        return sum(_stem(w) not in facts for w in words) >= self.config.min_words

    def _weak(self, lo: int, picks: list[int], trimmed: set[int]) -> bool:
        """No supporting sentence, or only boilerplate (see :meth:`_boilerplate`)."""
        return all((self._tail_generic if p in trimmed else self._generic)[lo + p] for p in picks)

    def _support(self, item_id, lo, hi, user, seed, n_max, stated, budget, *, allow_cut):
        """Indices (within the item) of the supporting sentences, in order, and those quoted by their tail clause.

        A sentence that restates a fact already stated is not picked; its tail clause
        (:func:`_tail_clause`) may be, when the clause restates none.
        """
        c = self.config
        vecs = self.vectors_[lo:hi]
        sents = self.sentences_[lo:hi]
        srcs = self.sources_[lo:hi]
        mentions = self._mentions[lo:hi]
        tails, tail_mentions = self._tails[lo:hi], self._tail_mentions[lo:hi]
        n = len(sents)
        quoted = np.array([len('A reviewer writes: ""') if src.startswith(REVIEW) else 0 for src in srcs])
        lengths = np.array([len(s) for s in sents]) + quoted
        tail_lengths = np.array([len(t) if t else 0 for t in tails]) + quoted
        has_tail = np.array([t is not None for t in tails])
        generic, tail_generic = self._generic[lo:hi], self._tail_generic[lo:hi]
        trimmed_picks: set[int] = set()
        if srcs == [TITLE] and stated:  # the title restates what the link said
            return [], trimmed_picks
        norm = float(np.linalg.norm(user))
        neutral = norm == 0.0
        is_desc = np.array([s == DESCRIPTION for s in srcs])
        if neutral:
            # the item's most typical statements: word-level centrality among its own sentences
            rel = self.typicality_[lo:hi] if self.typicality_ is not None \
                else (vecs @ vecs.sum(axis=0) - 1.0) / max(n - 1, 1)
            has_reviews = bool((~is_desc).any())
            first_desc = int(np.argmax(is_desc)) if is_desc.any() else None
        else:
            rel = vecs @ (user / norm)
        linked = bool(stated)  # after a history link, the support says what the link left unsaid
        stated = set(stated)
        chosen: list[int] = []
        rng = None
        # a sentence that leans on the one before it ("He is turning 15.") only follows that sentence
        leans, follows = self._leans[lo:hi], self._follows[lo:hi]
        while len(chosen) < min(n_max, n):
            sep = 1 if chosen else 0
            trim = np.zeros(n, dtype=bool)
            if stated:
                blocked = np.array([bool(m & stated) for m in mentions])
                trim = blocked & has_tail & np.array([not (m & stated) for m in tail_mentions])
            size = np.where(trim, tail_lengths, lengths)
            ok = size + sep <= budget
            ok[chosen] = False
            if leans.any():
                after = np.zeros(n, dtype=bool)
                if chosen and chosen[-1] + 1 < n:
                    after[chosen[-1] + 1] = True
                ok &= ~leans | (after & follows) | trim  # a tail clause never leans on what came before
            if stated:
                ok &= ~blocked | trim
            if linked or not neutral:  # what this item alone has first; boilerplate only when nothing else is left
                boiler = np.where(trim, tail_generic, generic)
                if (ok & ~boiler).any():
                    ok &= ~boiler
            if neutral:
                if not chosen and first_desc is not None and ok[first_desc]:
                    nxt = first_desc
                elif has_reviews and (ok & ~is_desc).any():
                    ok &= ~is_desc  # after the description's lead, the reviews speak
                    nxt = None
                elif (ok & is_desc).any():  # no review left: the description, in order
                    nxt = int(np.flatnonzero(ok & is_desc)[0])
                else:
                    nxt = None
            else:
                nxt = None
            if nxt is None:
                if not ok.any():
                    break
                penalty = (vecs @ vecs[chosen].T).max(axis=1) if chosen else 0.0
                score = np.where(ok, c.mmr_lambda * rel - (1 - c.mmr_lambda) * penalty, -np.inf)
                best = np.flatnonzero(score == score.max())
                if len(best) > 1:  # the seed breaks exact ties, per pair, whatever the batch
                    rng = rng or self._rng(seed, item_id)
                    nxt = int(rng.choice(best))
                else:
                    nxt = int(best[0])
            chosen.append(nxt)
            budget -= size[nxt] + sep
            if trim[nxt]:
                trimmed_picks.add(nxt)
                stated |= tail_mentions[nxt]
            else:
                stated |= mentions[nxt]
        if not chosen and allow_cut:  # no sentence fits at all: the most relevant one, cut (marked < 0)
            return [-int(np.argmax(rel)) - 1], trimmed_picks
        return chosen, trimmed_picks

    def _said(self, lo: int, p: int, trimmed: set[int]) -> str:
        """The text a pick quotes: the sentence, or its tail clause."""
        return _capitalize(self._tails[lo + p] if p in trimmed else self.sentences_[lo + p])

    def _render(self, lo: int, picks: list[int], trimmed: set[int] = frozenset()) -> list[str]:
        """Description sentences verbatim; review sentences quoted, consecutive ones of one review together."""
        out: list[str] = []
        j = 0
        picks = [p for p in picks if p >= 0]
        while j < len(picks):
            src = self.sources_[lo + picks[j]]
            s = self._said(lo, picks[j], trimmed)
            if not src.startswith(REVIEW):
                out.append(s)
                j += 1
                continue
            quotes, srcs = [[s]], [src]
            while j + 1 < len(picks) and self.sources_[lo + picks[j + 1]].startswith(REVIEW):
                j += 1
                nxt = self.sources_[lo + picks[j]]
                if nxt == srcs[-1]:
                    quotes[-1].append(self._said(lo, picks[j], trimmed))
                else:
                    quotes.append([self._said(lo, picks[j], trimmed)])
                    srcs.append(nxt)
            said = [f'"{" ".join(q)}"' for q in quotes]
            out.append(f"A reviewer writes: {said[0]}" if len(said) == 1 else f"Reviewers write: {_join(said)}")
            j += 1
        return out

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save to ``directory`` (JSON sentences and item facts + ``vectors.npy``, checksummed manifest; atomic)."""
        self._check()
        payload = {"item_ids": self.item_ids_, "sentences": self.sentences_, "sources": self.sources_,
                   "ptr": self.ptr_.tolist(), "titles": self.titles_, "attributes": self.attributes_,
                   "verb": self.verb_,
                   "typicality": None if self.typicality_ is None else [round(float(t), 6) for t in self.typicality_]}

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
            # generators saved before history links carry no facts: they never name history items
            gen.titles_ = [str(t) for t in payload.get("titles", [""] * len(gen.item_ids_))]
            gen.attributes_ = [{str(k): str(v) for k, v in a.items()}
                               for a in payload.get("attributes", [{}] * len(gen.item_ids_))]
            gen.verb_ = str(payload.get("verb", _DEFAULT_VERB))
            typ = payload.get("typicality")
            gen.typicality_ = None if typ is None else np.asarray(typ, dtype=np.float64)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{directory}: invalid grounded-blurb files: {exc}") from exc
        gen.vectors_ = load_npy(directory / "vectors.npy").astype(np.float32, copy=False)
        n = len(gen.sentences_)
        if (gen.vectors_.ndim != 2 or len(gen.vectors_) != n or len(gen.sources_) != n
                or len(gen.ptr_) != len(gen.item_ids_) + 1 or gen.ptr_[0] != 0 or gen.ptr_[-1] != n
                or np.any(np.diff(gen.ptr_) < 1) or len(gen.titles_) != len(gen.item_ids_)
                or len(gen.attributes_) != len(gen.item_ids_)
                or (gen.typicality_ is not None and gen.typicality_.shape != (n,))):
            raise ArtifactError(f"{directory}: sentences, sources, pointers, facts and vectors do not match")
        gen._derive()
        return gen


def _require(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; has {list(frame.columns)}")


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
