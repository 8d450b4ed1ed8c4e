"""Which review sentences may be quoted as praise: a sentence-level check with VADER.

A well-rated review often carries a complaint ("Love the colour. The zipper broke after a
week."), so the review's rating alone is not enough. :class:`PraiseFilter` judges each
sentence with VADER (Hutto & Gilbert, 2014; the ``vaderSentiment`` package ships its
lexicon and rules, nothing is downloaded at run time) and keeps a sentence only when

* VADER's compound score is at least ``min_compound`` (clearly positive),
* VADER finds no negative word in it (``neg == 0``: "great colour but it shrank" is out even
  when the positive words win), and
* it has no contrast or return cue (``but``, ``however``, ``though``, ``wish``, ``returned``,
  ...): such sentences usually carry the complaint after the cue, where a lexicon sees
  nothing negative ("I wanted to love it, but it runs small").

The blurb generator applies it on top of the review's rating (reviews below the rating
threshold give no sentences at all). Description sentences are the seller's own statements
and are not filtered.

>>> PraiseFilter().is_praise("The zipper broke after a week.")
False
>>> PraiseFilter().is_praise("Love the teal stripes, the wool feels sturdy.")
True
"""
from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["CONTRAST_CUES", "PraiseFilter"]

#: Words after which a review sentence usually turns into a complaint (or that report one).
CONTRAST_CUES = ("but", "however", "though", "although", "except", "unfortunately", "sadly", "wish", "wished",
                 "return", "returned", "returning", "disappointed", "disappointing", "otherwise", "only complaint")
_CUE = re.compile(r"\b(?:" + "|".join(re.escape(c) for c in CONTRAST_CUES) + r")\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _analyzer():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:  # a core dependency; say how to get it back
        raise ImportError("the blurb generator's praise filter needs VADER: pip install vaderSentiment") from exc
    return SentimentIntensityAnalyzer()


class PraiseFilter:
    """Sentence-level "is this praise?" check (VADER + contrast cues).

    Parameters
    ----------
    min_compound : float, default 0.3
        Lowest VADER compound score (in [-1, 1]) of a sentence quoted as praise.
    """

    def __init__(self, min_compound: float = 0.3) -> None:
        if not -1.0 <= min_compound <= 1.0:
            raise ValueError(f"min_compound must be in [-1, 1]; got {min_compound}")
        self.min_compound = float(min_compound)

    @staticmethod
    def scores(sentence: str) -> dict[str, float]:
        """VADER's ``neg``, ``neu``, ``pos`` and ``compound`` scores of ``sentence``."""
        return _analyzer().polarity_scores(sentence)

    def is_praise(self, sentence: str) -> bool:
        """True when ``sentence`` may be quoted as praise (see the module docstring)."""
        if not isinstance(sentence, str) or not sentence.strip() or _CUE.search(sentence):
            return False
        s = self.scores(sentence)
        return s["compound"] >= self.min_compound and s["neg"] == 0.0
