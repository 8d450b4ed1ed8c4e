"""Metrics for generated content: preview images and blurbs.

Images: feature-space FID (:func:`frechet_distance`), identifiability (:func:`identifiability`)
and personalization (:func:`personalization_gain`). They take *features* from any image
encoder (recgen uses its own image-encoder features), never pixels, so they stay
model-agnostic.

Blurbs: BLEU (:func:`bleu`, sacrebleu) and ROUGE (:func:`rouge`, rouge-score) are delegated
to the reference packages, not re-implemented, and reported on a 0-100 scale as in the
explainable-recommendation papers (PETER, Li et al. 2021, reports BLEU-1 24.33 and
ROUGE-L F 22.89 on TripAdvisor: percentages). USR, distinct-n, FMR and faithfulness are
small enough to define here.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Collection, Sequence

import numpy as np

__all__ = [
    "blurb_report", "bleu", "bootstrap_ci", "distinct_n", "faithfulness", "feature_matching_ratio",
    "frechet_distance", "identifiability", "personalization_gain", "rouge", "text_personalization",
    "unique_sentence_ratio",
]

_WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
# bootstrap resamples are drawn in chunks of about this many values (bounds memory at ~80 MB)
_BOOT_CHUNK_VALUES = 10_000_000


# ----------------------------------------------------------------------------- helpers
def _feats(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, dim); got shape {arr.shape}")
    if len(arr) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {len(arr)}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has dim 0")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _unit(x: np.ndarray) -> np.ndarray:
    # zero rows stay zero (cosine 0 to everything) instead of becoming NaN
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings, not a single str")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} is empty")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a str; got {type(t).__name__}")
    return texts


def _check_parallel(other: Sequence[Any], name: str, n: int, of: str) -> None:
    if isinstance(other, str):
        raise TypeError(f"{name} must be a sequence with one entry per text, not a single str")
    if len(other) != n:
        raise ValueError(f"{name} has {len(other)} entries but {of} has {n}")


def _check_references(references: Sequence[Sequence[str]], n: int) -> list[list[str]]:
    _check_parallel(references, "references", n, "hypotheses")
    out = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise TypeError(f"references[{i}] must be a list of reference strings, not a single str")
        refs = list(refs)
        if not refs:
            raise ValueError(f"references[{i}] is empty; every hypothesis needs at least one reference")
        for j, r in enumerate(refs):
            if not isinstance(r, str):
                raise TypeError(f"references[{i}][{j}] must be a str; got {type(r).__name__}")
        out.append(refs)
    return out


def _check_ci(ci: float, n_boot: int) -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot}")


# ----------------------------------------------------------------------------- images
def frechet_distance(real_feats: np.ndarray, fake_feats: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` with sample means and (unbiased)
    sample covariances, computed in float64 in whatever feature space the features come from.

    Absolute values are comparable only within one feature space and at similar sample
    sizes (the estimate is biased upwards for small sets): recgen's image-encoder FID is
    *not* Inception-FID and must not be compared with numbers from papers.

    Parameters
    ----------
    real_feats : ndarray, shape (n, d)
        Features of real images, ``n >= 2``.
    fake_feats : ndarray, shape (m, d)
        Features of generated images, ``m >= 2``, same ``d``.
    eps : float, default 1e-6
        Added to both covariance diagonals when the matrix square root of their product is
        not finite or has a non-negligible imaginary part (singular product), as in the
        reference FID implementations (pytorch-fid, TTUR).

    Returns
    -------
    float
        The distance, ``>= 0`` (tiny negative round-off is clipped to 0).

    Raises
    ------
    ValueError
        Wrong shapes, fewer than 2 rows, NaN/inf, or a square root that stays complex even
        after regularization.
    """
    from scipy import linalg

    r = _feats(real_feats, "real_feats", 2)
    f = _feats(fake_feats, "fake_feats", 2)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"fake_feats has dim {f.shape[1]}; real_feats has dim {r.shape[1]}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps}")
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r = np.atleast_2d(np.cov(r, rowvar=False))
    s_f = np.atleast_2d(np.cov(f, rowvar=False))

    def _sqrt(a: np.ndarray) -> np.ndarray | None:
        import warnings

        with warnings.catch_warnings():  # fewer rows than dimensions: singular, expected; checked below
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            root = linalg.sqrtm(a)
        if not np.isfinite(root).all():
            return None
        if np.iscomplexobj(root) and not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            return None
        return np.real(root)

    covmean = _sqrt(s_r @ s_f)
    if covmean is None:
        off = np.eye(len(s_r)) * eps
        covmean = _sqrt((s_r + off) @ (s_f + off))
        if covmean is None:
            raise ValueError(f"the covariance product has no usable real square root even with eps={eps}; "
                             "use more samples or a larger eps")
    dist = ((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * np.trace(covmean)
    return float(max(0.0, dist))


def identifiability(generated_feats: np.ndarray, item_feats: np.ndarray, own_rows: Sequence[int], *,
                    n_candidates: int = 100, ks: Sequence[int] = (1, 5), seed: int = 0) -> dict[str, float]:
    """Does each generated preview retrieve its own item among ``n_candidates`` by image similarity?

    For preview ``i`` the candidates are its own item ``item_feats[own_rows[i]]`` plus
    ``n_candidates - 1`` other items drawn without replacement (seeded, never the own item);
    candidates are ranked by cosine similarity to the preview. Ties with the own item are
    broken at random (seeded), so a degenerate generator (e.g. constant features) scores at
    chance rather than at 100%. With fewer than ``n_candidates`` items, all items are used.

    Parameters
    ----------
    generated_feats : ndarray, shape (n, d) or (n, w, d)
        Features of the generated previews; with ``w`` windows per preview (e.g.
        :func:`~recgen.evaluation.judges.window_features`), a candidate's similarity is that of
        the preview's best-matching window (the item is found wherever the preview shows it).
    item_feats : ndarray, shape (N, d)
        Features of the real item images (the candidate pool), ``N >= 2``.
    own_rows : array-like of int, shape (n,)
        Row in ``item_feats`` of each preview's own item.
    n_candidates : int, default 100
        Candidates per preview, own item included (``>= 2``).
    ks : sequence of int, default (1, 5)
        Cut-offs for the hit rates.
    seed : int, default 0
        Seed for the distractor draws and tie-breaking.

    Returns
    -------
    dict
        ``top{k}`` (share of previews whose own item ranks in the top ``k``),
        ``chance_top{k}`` (``min(1, k / n_candidates)``: the expected rate of a random
        ranking), ``n_candidates`` (candidates actually used) and ``n`` (previews).
    """
    windows = np.asarray(generated_feats)
    if windows.ndim == 3:
        n, w, d = windows.shape
        g = _unit(_feats(windows.reshape(n * w, d), "generated_feats")).reshape(n, w, d)
    else:
        g = _unit(_feats(generated_feats, "generated_feats"))[:, None, :]
    items = _unit(_feats(item_feats, "item_feats", 2))
    if g.shape[-1] != items.shape[1]:
        raise ValueError(f"generated_feats has dim {g.shape[-1]}; item_feats has dim {items.shape[1]}")
    own = np.asarray(own_rows)
    if own.ndim != 1 or len(own) != len(g):
        raise ValueError(f"own_rows must have shape ({len(g)},) like generated_feats rows; got {own.shape}")
    if not np.issubdtype(own.dtype, np.integer):
        raise ValueError(f"own_rows must be integers; got dtype {own.dtype}")
    if ((own < 0) | (own >= len(items))).any():
        raise ValueError(f"own_rows must index item_feats (0..{len(items) - 1}); "
                         f"got values in [{own.min()}, {own.max()}]")
    if int(n_candidates) != n_candidates or n_candidates < 2:
        raise ValueError(f"n_candidates must be an integer >= 2; got {n_candidates}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty sequence of integers >= 1; got {ks}")
    n_c = min(int(n_candidates), len(items))
    rng = np.random.default_rng(seed)
    ranks = np.empty(len(g), dtype=np.int64)
    for i, (vec, row) in enumerate(zip(g, own)):
        # draw from the N-1 other rows, then shift past the own row: excludes it without a copy
        others = rng.choice(len(items) - 1, size=n_c - 1, replace=False)
        others += others >= row
        own_sim = (vec @ items[row]).max()
        sims = (items[others] @ vec.T).max(axis=1)
        ties = int((sims == own_sim).sum())
        ranks[i] = int((sims > own_sim).sum()) + (int(rng.integers(0, ties + 1)) if ties else 0)
    out: dict[str, float] = {"n_candidates": n_c, "n": len(g)}
    for k in ks:
        out[f"top{k}"] = float(np.mean(ranks < k))
        out[f"chance_top{k}"] = min(1.0, k / n_c)
    return out


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
                 statistic: Callable[..., Any] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over ``values``.

    Resamples are drawn with replacement and evaluated vectorized, in chunks that bound
    memory.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        Observations (e.g. per-pair differences), ``n >= 1``, finite.
    n_boot : int, default 1000
        Number of bootstrap resamples.
    seed : int, default 0
    ci : float, default 0.95
        Coverage; the interval is the ``(1-ci)/2`` and ``(1+ci)/2`` quantiles.
    statistic : callable, default numpy.mean
        Called as ``statistic(samples, axis=1)`` on a ``(b, n)`` array and must return shape
        ``(b,)`` (numpy reductions such as ``np.mean`` / ``np.median`` do).

    Returns
    -------
    (low, high) : tuple of float
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not len(v):
        raise ValueError(f"values must be a non-empty 1-D sequence; got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values contains NaN or inf")
    _check_ci(ci, n_boot)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_VALUES // len(v))
    stats = []
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, len(v), size=(min(chunk, int(n_boot) - start), len(v)))
        stats.append(np.asarray(statistic(v[idx], axis=1), dtype=np.float64).reshape(-1))
    s = np.concatenate(stats)
    if len(s) != n_boot:
        raise ValueError(f"statistic must reduce axis 1 of a (b, n) array to shape (b,); got {len(s)} values "
                         f"for {n_boot} resamples")
    a = (1 - ci) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def personalization_gain(personal_feats: np.ndarray, neutral_feats: np.ndarray,
                         history_feats: Sequence[np.ndarray], *, n_boot: int = 1000, seed: int = 0,
                         ci: float = 0.95) -> dict[str, float]:
    """How much closer personalized previews are to the user's history than neutral ones.

    For pair ``i``: ``sim_p`` = mean cosine similarity of ``personal_feats[i]`` to the rows of
    ``history_feats[i]`` (the user's history images), ``sim_n`` the same for
    ``neutral_feats[i]`` (same item and seed, neutral user vector). The gain is
    ``sim_p - sim_n``, averaged over pairs.

    Parameters
    ----------
    personal_feats : ndarray, shape (n, d)
        Features of the personalized previews.
    neutral_feats : ndarray, shape (n, d)
        Features of the matching neutral previews.
    history_feats : sequence of n ndarrays, each shape (h_i, d), h_i >= 1
        Image features of each pair's user history.
    n_boot, seed, ci
        Bootstrap settings (see :func:`bootstrap_ci`); resampling is over pairs.

    Returns
    -------
    dict
        ``mean_diff`` (mean gain), ``ci_low`` / ``ci_high`` (percentile bootstrap CI of the
        mean gain), ``p_value`` (two-sided Wilcoxon signed-rank test of the paired gains,
        zeros dropped; 1.0 when fewer than 2 non-zero gains), ``sim_personal`` /
        ``sim_neutral`` (mean ``sim_p`` / ``sim_n``) and ``n`` (pairs).
    """
    from scipy import stats

    p = _unit(_feats(personal_feats, "personal_feats"))
    q = _unit(_feats(neutral_feats, "neutral_feats"))
    if q.shape != p.shape:
        raise ValueError(f"neutral_feats has shape {q.shape}; personal_feats has shape {p.shape}")
    _check_parallel(history_feats, "history_feats", len(p), "personal_feats")
    sim_p = np.empty(len(p))
    sim_n = np.empty(len(p))
    for i, h in enumerate(history_feats):
        h = _feats(h, f"history_feats[{i}]")
        if h.shape[1] != p.shape[1]:
            raise ValueError(f"history_feats[{i}] has dim {h.shape[1]}; personal_feats has dim {p.shape[1]}")
        h = _unit(h)
        sim_p[i], sim_n[i] = (h @ p[i]).mean(), (h @ q[i]).mean()
    d = sim_p - sim_n
    low, high = bootstrap_ci(d, n_boot=n_boot, seed=seed, ci=ci)
    nonzero = d[d != 0]
    pval = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else 1.0
    return {"mean_diff": float(d.mean()), "ci_low": low, "ci_high": high, "p_value": pval,
            "sim_personal": float(sim_p.mean()), "sim_neutral": float(sim_n.mean()), "n": int(len(d))}


# ----------------------------------------------------------------------------- texts
def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, n: int,
         lowercase: bool = True) -> float:
    """Corpus BLEU-``n`` on a 0-100 scale, computed by sacrebleu.

    ``sacrebleu.metrics.BLEU(max_ngram_order=n, smooth_method="none")``: classic corpus BLEU
    (uniform weights over 1..n-gram precisions, brevity penalty against the closest
    reference length), unsmoothed like the BLEU of PETER/NRT. Tokenization is sacrebleu's
    default ``13a``.

    Parameters
    ----------
    hypotheses : sequence of str, length H
        Generated texts.
    references : sequence of H sequences of str
        One or more references per hypothesis; the number may vary. sacrebleu wants
        reference *streams* (stream ``j`` = the ``j``-th reference of every hypothesis), so
        the lists are transposed and missing entries are passed as ``None``, which sacrebleu
        skips (its documented way to give a variable number of references).
    n : int
        Maximum n-gram order (1 for BLEU-1, 4 for BLEU-4).
    lowercase : bool, default True
        Case-insensitive matching (the review corpora of the papers are lowercased).

    Returns
    -------
    float
        BLEU in [0, 100]; 0 when some order up to ``n`` has no match at all.
    """
    from sacrebleu.metrics import BLEU

    hyps = _check_texts(hypotheses, "hypotheses")
    refs = _check_references(references, len(hyps))
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n}")
    width = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(width)]
    metric = BLEU(max_ngram_order=int(n), smooth_method="none", lowercase=lowercase)
    return float(metric.corpus_score(hyps, streams).score)


def rouge(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *,
          per_text: bool = False) -> dict[str, Any]:
    """ROUGE-1/2/L precision, recall and F on a 0-100 scale, computed by rouge-score.

    ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)``
    (lowercased alphanumeric tokens, Porter stemming). With several references, each
    hypothesis is scored against the reference with the highest F, separately per measure
    (``RougeScorer.score_multi``); precision and recall come from that same reference. The
    per-hypothesis scores are averaged (macro average).

    Parameters
    ----------
    hypotheses : sequence of str, length H
    references : sequence of H non-empty sequences of str
    per_text : bool, default False
        Also return each hypothesis's own F per measure (``rouge1_f_per_text`` ...: float64
        arrays of shape (H,), 0-100), e.g. for a paired comparison of two systems on the same
        items (:func:`recgen.evaluation.ranking.paired_comparison`).

    Returns
    -------
    dict
        ``rouge1_p``, ``rouge1_r``, ``rouge1_f``, ``rouge2_*`` and ``rougeL_*``, each in [0, 100]
        (the macro averages), and with ``per_text`` the ``*_f_per_text`` arrays.
    """
    from rouge_score import rouge_scorer

    hyps = _check_texts(hypotheses, "hypotheses")
    refs = _check_references(references, len(hyps))
    types = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=True)
    each = {f"{m}_{s}": np.empty(len(hyps)) for m in types for s in ("p", "r", "f")}
    for j, (hyp, rs) in enumerate(zip(hyps, refs)):
        best = scorer.score_multi(rs, hyp)
        for m in types:
            score = best[m]
            each[f"{m}_p"][j], each[f"{m}_r"][j], each[f"{m}_f"][j] = score.precision, score.recall, score.fmeasure
    out: dict[str, Any] = {k: 100.0 * float(v.mean()) for k, v in each.items()}
    if per_text:
        out.update({f"{m}_f_per_text": 100.0 * each[f"{m}_f"] for m in types})
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def unique_sentence_ratio(texts: Sequence[str]) -> float:
    """USR (PETER): number of distinct generated texts / number of generated texts.

    Two texts are the same sentence when their lowercased word/punctuation token sequences
    are equal (PETER compares token sequences), so case and spacing differences do not
    count as diversity.

    Parameters
    ----------
    texts : sequence of str, length >= 1

    Returns
    -------
    float
        In (0, 1]; 1 means every text is different.
    """
    texts = _check_texts(texts, "texts")
    return len({tuple(_tokens(t)) for t in texts}) / len(texts)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (DIV): distinct n-grams / total n-grams, pooled over the whole corpus.

    Tokens are lowercased words (``\\w+``) and single punctuation marks; n-grams do not cross
    text boundaries.

    Parameters
    ----------
    texts : sequence of str, length >= 1
    n : int, >= 1

    Returns
    -------
    float
        In [0, 1]; 0.0 when no text has ``n`` tokens.
    """
    texts = _check_texts(texts, "texts")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n}")
    n = int(n)
    grams: list[tuple[str, ...]] = []
    for t in texts:
        toks = _tokens(t)
        grams += [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def feature_matching_ratio(texts: Sequence[str], features: Sequence[str]) -> float:
    """FMR (PETER): share of texts that mention their own item's feature.

    A text matches when it contains ``features[i]`` as a whole word or phrase
    (case-insensitive, word boundaries on both sides: "fit" does not match "fitted").

    Parameters
    ----------
    texts : sequence of str, length H
    features : sequence of H non-empty str
        The feature word (or phrase) of each text's item.

    Returns
    -------
    float
        In [0, 1].
    """
    texts = _check_texts(texts, "texts")
    _check_parallel(features, "features", len(texts), "texts")
    hits = []
    for i, (t, f) in enumerate(zip(texts, features)):
        if not isinstance(f, str) or not f.strip():
            raise ValueError(f"features[{i}] must be a non-empty str; got {f!r}")
        # lookarounds rather than \b so features that start/end with punctuation ("c++") work
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in f.lower().split()) + r"(?!\w)"
        hits.append(re.search(pattern, t.lower()) is not None)
    return float(np.mean(hits))


def _content_words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    # single letters are mostly contraction debris ("don't" -> "don", "t")
    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS and len(w) > 1]


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 2 else word


def faithfulness(texts: Sequence[str], source_texts: Sequence[str], *,
                 connectives: Collection[str] = ()) -> dict[str, Any]:
    """Share of each blurb's content words that occur in its own item's text and reviews.

    Content words are lowercased alphabetic tokens of two or more letters that are not in
    scikit-learn's ``ENGLISH_STOP_WORDS`` (nor in ``connectives``). A blurb word is supported
    when it occurs among the content words of ``source_texts[i]``, also after dropping one
    trailing "s" from either side ("mugs" ~ "mug"). The share counts word occurrences; a blurb
    without content words counts as fully supported (it asserts nothing).

    Parameters
    ----------
    texts : sequence of str, length H
        Generated blurbs.
    source_texts : sequence of H str
        Each blurb's item text (title, description, attributes) and reviews, concatenated;
        for a blurb that names a history item, that item's text too. Passing only the text of
        the sources a blurb cites (its clause provenance) makes this a stricter check.
    connectives : collection of str, optional
        The words a generator's templates add that state no fact (e.g.
        :data:`recgen.generators.grounded.TEMPLATE_WORDS`: "picked", "reviewer", "writes"),
        treated like stop words. Pass a generator's declared template vocabulary only: a
        connective that is also a fact word (a colour, a title word) would hide an invented
        fact. Occurrences are counted in ``connective_words``.

    Returns
    -------
    dict
        ``mean`` (average share over blurbs, target 1.0), ``all_supported`` (share of blurbs
        at 100%), ``per_text`` (list of H shares) and ``unsupported`` (list of H lists: the
        distinct unsupported words of each blurb, in order of appearance, so a reader sees
        what was invented) and ``connective_words`` (total connectives left out).
    """
    texts = _check_texts(texts, "texts")
    _check_parallel(source_texts, "source_texts", len(texts), "texts")
    if isinstance(connectives, str):
        raise TypeError("connectives must be a collection of words, not a single str")
    skip = {w.lower() for w in connectives}
    shares, unsupported, n_conn = [], [], 0
    for i, (t, src) in enumerate(zip(texts, source_texts)):
        if not isinstance(src, str):
            raise TypeError(f"source_texts[{i}] must be a str; got {type(src).__name__}")
        vocab = {_stem(w) for w in _content_words(src)}
        words = _content_words(t)
        n_conn += sum(w in skip for w in words)
        words = [w for w in words if w not in skip]
        missing = [w for w in words if _stem(w) not in vocab]
        shares.append(1.0 - len(missing) / len(words) if words else 1.0)
        unsupported.append(list(dict.fromkeys(missing)))
    return {"mean": float(np.mean(shares)), "all_supported": float(np.mean([s == 1.0 for s in shares])),
            "per_text": shares, "unsupported": unsupported, "connective_words": n_conn}


def text_personalization(texts: Sequence[str], own_texts: Sequence[str], other_texts: Sequence[str], *,
                         other_blurbs: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                         ci: float = 0.95) -> dict[str, float]:
    """Is each blurb closer to its own user's history than to another user's? (TF-IDF words)

    A judge independent of any sentence encoder: every text is a TF-IDF vector of its words
    (scikit-learn ``TfidfVectorizer``, English stop words removed, fitted on all the texts
    given). Blurb ``i`` *wins* when its cosine similarity to ``own_texts[i]`` (its user's
    history items' texts, concatenated) is higher than to ``other_texts[i]`` (another user's),
    counts half on a tie. Chance is 0.5.

    When the item was itself picked for the user (a recommendation), its own facts already
    resemble the user's history and a non-personal blurb wins too. ``other_blurbs`` (the
    other user's blurb of the *same* item) gives the swap test that cancels the item: pair
    ``i`` wins when ``sim(texts[i], own) + sim(other_blurbs[i], other)`` exceeds
    ``sim(texts[i], other) + sim(other_blurbs[i], own)``, i.e. the two blurbs match their own
    users better than swapped. Two equal blurbs tie.

    Parameters
    ----------
    texts : sequence of str, length H
        Blurbs.
    own_texts, other_texts : sequence of H str
        Each blurb's own user's history text and a different user's.
    other_blurbs : sequence of H str, optional
        The other user's blurb of the same item: the swap test.
    n_boot, seed, ci
        Bootstrap settings of the CI of the win rate (see :func:`bootstrap_ci`).

    Returns
    -------
    dict
        ``win_rate`` (share of wins), ``ci_low`` / ``ci_high``, ``chance`` (0.5),
        ``sim_own`` / ``sim_other`` (mean cosines; sums of two with ``other_blurbs``),
        ``ties`` (share of ties) and ``n``.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = _check_texts(texts, "texts")
    own = _check_texts(own_texts, "own_texts")
    other = _check_texts(other_texts, "other_texts")
    _check_parallel(own, "own_texts", len(texts), "texts")
    _check_parallel(other, "other_texts", len(texts), "texts")
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", sublinear_tf=True)
    swap = _check_texts(other_blurbs, "other_blurbs") if other_blurbs is not None else None
    if swap is not None:
        _check_parallel(swap, "other_blurbs", len(texts), "texts")
    vec.fit(list(texts) + list(own) + list(other) + (swap or []))
    t, a, b = (vec.transform(x) for x in (texts, own, other))  # rows are L2-normalized

    def sim(x, y) -> np.ndarray:
        return np.asarray(x.multiply(y).sum(axis=1)).ravel()

    sim_a, sim_b = sim(t, a), sim(t, b)
    if swap is not None:
        s = vec.transform(swap)
        sim_a, sim_b = sim_a + sim(s, b), sim_b + sim(s, a)
    wins = np.where(np.isclose(sim_a, sim_b), 0.5, (sim_a > sim_b).astype(float))
    low, high = bootstrap_ci(wins, n_boot=n_boot, seed=seed, ci=ci)
    return {"win_rate": float(wins.mean()), "ci_low": low, "ci_high": high, "chance": 0.5,
            "sim_own": float(sim_a.mean()), "sim_other": float(sim_b.mean()),
            "ties": float(np.isclose(sim_a, sim_b).mean()), "n": int(len(wins))}


def blurb_report(hypotheses: Sequence[str], references: Sequence[Sequence[str]] | None, *,
                 features: Sequence[str] | None = None, sources: Sequence[str] | None = None,
                 connectives: Collection[str] = ()) -> dict[str, Any]:
    """All blurb metrics at once.

    Parameters
    ----------
    hypotheses : sequence of str, length H
    references : sequence of H non-empty sequences of str, or None
        Held-out texts for BLEU / ROUGE; None leaves those keys out (nothing to compare with).
    features : sequence of H str, optional
        Item feature words; adds ``fmr``.
    sources : sequence of H str, optional
        Item text + reviews; adds ``faithfulness``, ``faithful_all`` and
        ``unsupported`` (see :func:`faithfulness`).
    connectives : collection of str, optional
        Template words passed on to :func:`faithfulness`.

    Returns
    -------
    dict
        ``bleu1``, ``bleu4`` (0-100), ``rouge1_f``, ``rouge2_f``, ``rougeL_f`` (0-100; with
        ``references``), ``usr``, ``distinct1``, ``distinct2`` (0-1), ``n``; plus the optional keys above.
    """
    out: dict[str, Any] = {}
    if references is not None:
        r = rouge(hypotheses, references)
        out.update({"bleu1": bleu(hypotheses, references, n=1), "bleu4": bleu(hypotheses, references, n=4),
                    "rouge1_f": r["rouge1_f"], "rouge2_f": r["rouge2_f"], "rougeL_f": r["rougeL_f"]})
    out.update({"usr": unique_sentence_ratio(hypotheses), "distinct1": distinct_n(hypotheses, 1),
                "distinct2": distinct_n(hypotheses, 2), "n": len(hypotheses)})
    if features is not None:
        out["fmr"] = feature_matching_ratio(hypotheses, features)
    if sources is not None:
        f = faithfulness(hypotheses, sources, connectives=connectives)
        out["faithfulness"] = f["mean"]
        out["faithful_all"] = f["all_supported"]
        out["unsupported"] = f["unsupported"]
    return out
