"""Metrics for generated content: preview images (feature-space FID, identifiability,
personalization) and blurbs (BLEU, ROUGE, USR, distinct-n, FMR, faithfulness).

Image metrics take *features* (any image encoder's), not pixels, so they stay
model-agnostic; recgen uses its own image-encoder features. BLEU and ROUGE come from
sacrebleu and rouge-score (not re-implemented), reported on a 0-100 scale as in the
explainable-recommendation papers (PETER: BLEU-1 24.33, ROUGE-L F 22.89 on TripAdvisor).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _feats(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, dim); got shape {arr.shape}")
    if len(arr) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------- images
def frechet_distance(real_feats: np.ndarray, fake_feats: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``. Computed in whatever feature
    space the features come from: values are comparable only within one space (recgen's
    image-encoder FID is not Inception-FID).

    Parameters
    ----------
    real_feats : ndarray, shape (n, d), n >= 2
    fake_feats : ndarray, shape (m, d), m >= 2
    """
    from scipy import linalg

    r = _feats(real_feats, "real_feats", 2)
    f = _feats(fake_feats, "fake_feats", 2)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real_feats has dim {r.shape[1]} but fake_feats has dim {f.shape[1]}")
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    covmean, _ = linalg.sqrtm(s_r @ s_f, disp=False)
    if not np.isfinite(covmean).all():  # singular product: regularize (as in the reference FID code)
        off = np.eye(len(s_r)) * eps
        covmean = linalg.sqrtm((s_r + off) @ (s_f + off))
    covmean = np.real(covmean)
    return float(max(0.0, ((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * np.trace(covmean)))


def identifiability(generated_feats: np.ndarray, item_feats: np.ndarray, own_rows: Sequence[int], *,
                    n_candidates: int = 100, ks: Sequence[int] = (1, 5), seed: int = 0) -> dict[str, float]:
    """Does a preview retrieve its own item among ``n_candidates`` by image similarity?

    For preview ``i`` the candidates are its own item ``item_feats[own_rows[i]]`` and
    ``n_candidates - 1`` other items drawn at random (seeded); rank by cosine similarity.

    Returns
    -------
    dict
        ``top{k}`` hit rates, ``chance_top{k}`` (= k / candidates) and ``n_candidates``.
    """
    g = _unit(_feats(generated_feats, "generated_feats"))
    items = _unit(_feats(item_feats, "item_feats", 2))
    own = np.asarray(own_rows, dtype=int)
    if len(own) != len(g):
        raise ValueError(f"own_rows has {len(own)} entries but generated_feats has {len(g)} rows")
    if ((own < 0) | (own >= len(items))).any():
        raise ValueError(f"own_rows must index item_feats (0..{len(items) - 1})")
    n_c = min(int(n_candidates), len(items))
    rng = np.random.default_rng(seed)
    ranks = np.empty(len(g), dtype=int)
    for i, (vec, row) in enumerate(zip(g, own)):
        others = np.delete(np.arange(len(items)), row)
        cand = np.concatenate([[row], rng.choice(others, size=n_c - 1, replace=False)])
        sims = items[cand] @ vec
        ranks[i] = int((sims[1:] > sims[0]).sum())
    out: dict[str, float] = {"n_candidates": n_c}
    for k in ks:
        out[f"top{k}"] = float(np.mean(ranks < k))
        out[f"chance_top{k}"] = min(1.0, k / n_c)
    return out


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
                 statistic: Callable[..., Any] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` (vectorized over resamples)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or not len(v):
        raise ValueError(f"values must be a non-empty 1-D sequence; got shape {v.shape}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    stats = statistic(v[idx], axis=1)
    a = (1 - ci) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def personalization_gain(personal_feats: np.ndarray, neutral_feats: np.ndarray,
                         history_feats: Sequence[np.ndarray], *, n_boot: int = 1000, seed: int = 0,
                         ci: float = 0.95) -> dict[str, float]:
    """How much closer personalized previews are to the user's history than neutral ones.

    Per pair: ``sim_p`` = mean cosine similarity of the personalized preview to the user's
    history images, ``sim_n`` the same for the neutral preview (same item, same seed, no
    user). Returns the mean of ``sim_p - sim_n``, its percentile bootstrap CI over pairs,
    a Wilcoxon signed-rank p-value, and n.
    """
    from scipy import stats

    p = _unit(_feats(personal_feats, "personal_feats"))
    q = _unit(_feats(neutral_feats, "neutral_feats"))
    if p.shape != q.shape or len(history_feats) != len(p):
        raise ValueError(f"personal_feats {p.shape}, neutral_feats {q.shape} and history_feats "
                         f"({len(history_feats)} users) must describe the same pairs")
    diffs = []
    for i, h in enumerate(history_feats):
        h = _unit(_feats(h, f"history_feats[{i}]"))
        diffs.append(float((h @ p[i]).mean() - (h @ q[i]).mean()))
    d = np.asarray(diffs)
    low, high = bootstrap_ci(d, n_boot=n_boot, seed=seed, ci=ci)
    nonzero = d[d != 0]
    pval = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else 1.0
    return {"mean_diff": float(d.mean()), "ci_low": low, "ci_high": high, "p_value": pval, "n": int(len(d))}


# ----------------------------------------------------------------------------- texts
def _check_texts(hypotheses: Sequence[str], references: Sequence[Sequence[str]] | None = None) -> None:
    if isinstance(hypotheses, str) or any(not isinstance(h, str) for h in hypotheses):
        raise TypeError("hypotheses must be a sequence of strings")
    if references is not None:
        if len(references) != len(hypotheses):
            raise ValueError(f"references has {len(references)} entries but hypotheses has {len(hypotheses)}")
        for i, refs in enumerate(references):
            if isinstance(refs, str) or not len(refs):
                raise ValueError(f"references[{i}] must be a non-empty list of strings")


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, n: int = 4) -> float:
    """Corpus BLEU-``n`` (0-100) with sacrebleu; several references per hypothesis allowed.

    sacrebleu takes references as parallel streams; hypotheses with fewer references than
    the maximum are padded with their first reference (which leaves their matches unchanged).
    """
    from sacrebleu.metrics import BLEU

    _check_texts(hypotheses, references)
    width = max(len(r) for r in references)
    streams = [[list(r)[j] if j < len(r) else list(r)[0] for r in references] for j in range(width)]
    return float(BLEU(max_ngram_order=n, effective_order=True).corpus_score(list(hypotheses), streams).score)


def rouge(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """ROUGE-1/2/L precision, recall and F (0-100) with rouge-score (Porter stemming).

    With several references, each hypothesis takes the reference giving the best F (per
    measure), as is usual for multi-reference ROUGE; scores are averaged over hypotheses.
    """
    from rouge_score import rouge_scorer

    _check_texts(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    acc = {f"{m}_{s}": 0.0 for m in ("rouge1", "rouge2", "rougeL") for s in ("p", "r", "f")}
    for hyp, refs in zip(hypotheses, references):
        scores = [scorer.score(ref, hyp) for ref in refs]
        for m in ("rouge1", "rouge2", "rougeL"):
            best = max(scores, key=lambda s: s[m].fmeasure)[m]
            acc[f"{m}_p"] += best.precision
            acc[f"{m}_r"] += best.recall
            acc[f"{m}_f"] += best.fmeasure
    n = max(len(hypotheses), 1)
    return {k: 100 * v / n for k, v in acc.items()}


def unique_sentence_ratio(texts: Sequence[str]) -> float:
    """USR (PETER): distinct generated texts / all generated texts."""
    _check_texts(texts)
    return len(set(texts)) / len(texts) if texts else 0.0


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: distinct n-grams / total n-grams over the corpus (lowercased word/punct tokens)."""
    _check_texts(texts)
    grams = []
    for t in texts:
        toks = _TOKEN.findall(t.lower())
        grams += [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def feature_matching_ratio(texts: Sequence[str], features: Sequence[str]) -> float:
    """FMR (PETER): share of texts that mention their item's feature word (case-insensitive, whole word)."""
    _check_texts(texts)
    if len(features) != len(texts):
        raise ValueError(f"features has {len(features)} entries but texts has {len(texts)}")
    hits = [bool(f) and re.search(rf"\b{re.escape(f.lower())}", t.lower()) is not None for t, f in zip(texts, features)]
    return float(np.mean(hits)) if hits else 0.0


def _content_words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS and len(w) > 1]


def faithfulness(texts: Sequence[str], source_texts: Sequence[str]) -> dict[str, Any]:
    """Share of each blurb's content words that occur in its item's own text and reviews.

    Content words are lowercased alphabetic tokens outside scikit-learn's English stop-word
    list; a word also counts as supported when it matches after dropping a trailing "s".

    Returns
    -------
    dict
        ``mean`` (average share), ``all_supported`` (share of blurbs at 100%) and
        ``unsupported`` (per blurb, the words not found in its sources).
    """
    _check_texts(texts)
    if len(source_texts) != len(texts):
        raise ValueError(f"source_texts has {len(source_texts)} entries but texts has {len(texts)}")
    shares, unsupported = [], []
    for t, src in zip(texts, source_texts):
        vocab = set(_content_words(src))
        vocab |= {w.rstrip("s") for w in vocab}
        words = _content_words(t)
        missing = [w for w in words if w not in vocab and w.rstrip("s") not in vocab]
        shares.append(1.0 - len(missing) / len(words) if words else 1.0)
        unsupported.append(missing)
    return {"mean": float(np.mean(shares)) if shares else 0.0,
            "all_supported": float(np.mean([s == 1.0 for s in shares])) if shares else 0.0,
            "unsupported": unsupported}


def blurb_report(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *,
                 features: Sequence[str] | None = None, sources: Sequence[str] | None = None) -> dict[str, float]:
    """All blurb metrics at once: BLEU-1/4, ROUGE-1/2/L F, USR, distinct-1/2, FMR, faithfulness."""
    r = rouge(hypotheses, references)
    out = {"bleu1": bleu(hypotheses, references, n=1), "bleu4": bleu(hypotheses, references, n=4),
           "rouge1_f": r["rouge1_f"], "rouge2_f": r["rouge2_f"], "rougeL_f": r["rougeL_f"],
           "usr": unique_sentence_ratio(hypotheses), "distinct1": distinct_n(hypotheses, 1),
           "distinct2": distinct_n(hypotheses, 2), "n": len(hypotheses)}
    if features is not None:
        out["fmr"] = feature_matching_ratio(hypotheses, features)
    if sources is not None:
        f = faithfulness(hypotheses, sources)
        out["faithfulness"] = f["mean"]
        out["faithful_all"] = f["all_supported"]
    return out
