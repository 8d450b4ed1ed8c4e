"""Off-policy estimates of a new ranking's online effect from logged exposure data.

Before an A/B test, a team has logs of what the current system showed (one action per
impression), the probability the logging policy gave that action (its *propensity*), and the
reward (click, purchase). These estimators answer "what reward would the new policy have
earned?" with a confidence interval:

* :func:`ips`: inverse propensity scoring, ``mean(w * r)`` with ``w = pi_new(a|x) / pi_log(a|x)``;
  unbiased when propensities are right and the new policy only picks actions the logging
  policy could pick; high variance when weights are large.
* :func:`snips`: self-normalised IPS, ``sum(w * r) / sum(w)``; slightly biased, much lower
  variance, invariant to a constant reward shift.
* :func:`doubly_robust`: a reward model's estimate of the new policy's value, corrected by
  IPS on the model's residuals; unbiased if *either* the propensities or the reward model
  are right, usually the lowest variance.

Intervals are normal (CLT) intervals on the per-impression terms (delta method for SNIPS).
They assume the weights are not too heavy-tailed: check ``ess`` (effective sample size).
On the simulator, with ESS around 9% of n (a near-deterministic new policy), DR's 95%
interval covered the truth in 44 of 50 runs. With ESS around 17% it covered in 48 of 50.
Far below that, collect more logs or make the logging policy explore more.
:class:`ExposureSimulator` builds logs with a known true value from the bundled sample
catalog's users, whose tastes are known, to check the estimators (see the tests: 95%
intervals cover the truth in at least 90% of 50 seeded runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["OffPolicyEstimate", "ips", "snips", "doubly_robust", "ExposureSimulator", "softmax_policy"]


@dataclass(frozen=True)
class OffPolicyEstimate:
    """An estimate of a policy's mean reward per impression.

    Attributes
    ----------
    estimator : str
    value : float
    ci_low, ci_high : float
        ``ci`` confidence interval.
    n : int
        Impressions used.
    ess : float
        Effective sample size of the importance weights, ``sum(w)^2 / sum(w^2)``; far below
        ``n`` means a few impressions dominate and the interval is optimistic.
    max_weight : float
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    ess: float
    max_weight: float

    def covers(self, truth: float) -> bool:
        return self.ci_low <= truth <= self.ci_high

    def __str__(self) -> str:
        return (f"{self.estimator}: {self.value:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}] "
                f"(n={self.n}, ESS={self.ess:.0f}, max weight {self.max_weight:.1f})")


def _arrays(reward, p_log, p_new) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(reward, dtype=np.float64)
    pl = np.asarray(p_log, dtype=np.float64)
    pn = np.asarray(p_new, dtype=np.float64)
    if not (r.ndim == pl.ndim == pn.ndim == 1) or not (len(r) == len(pl) == len(pn)):
        raise ValueError(f"reward, p_log and p_new must be 1-D of equal length; got shapes "
                         f"{r.shape}, {pl.shape}, {pn.shape}")
    if len(r) < 2:
        raise ValueError("need at least 2 logged impressions")
    if not np.isfinite(r).all():
        raise ValueError("reward contains NaN or inf")
    if not ((pl > 0) & (pl <= 1)).all():
        bad = int(np.flatnonzero(~((pl > 0) & (pl <= 1)))[0])
        raise ValueError(f"p_log must be in (0, 1] (the logging policy's probability of the logged action); "
                         f"row {bad} has {pl[bad]!r}. A zero propensity means the action could not have been "
                         f"logged: the logs or the propensities are wrong")
    if not ((pn >= 0) & (pn <= 1)).all():
        raise ValueError("p_new must be in [0, 1] (the new policy's probability of the logged action)")
    return r, pn / pl


def _result(name: str, terms_mean: float, se: float, w: np.ndarray, ci: float) -> OffPolicyEstimate:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}")
    z = norm.ppf(0.5 + ci / 2)
    ess = float(w.sum() ** 2 / (w ** 2).sum()) if (w ** 2).sum() > 0 else 0.0
    return OffPolicyEstimate(name, float(terms_mean), float(terms_mean - z * se), float(terms_mean + z * se),
                             len(w), ess, float(w.max()))


def ips(reward: Sequence[float], p_log: Sequence[float], p_new: Sequence[float], *, ci: float = 0.95
        ) -> OffPolicyEstimate:
    """Inverse propensity scoring estimate of the new policy's mean reward.

    Parameters
    ----------
    reward : array-like, shape (n,)
        Observed reward of each logged impression.
    p_log : array-like, shape (n,)
        Logging policy's probability of the logged action, in (0, 1].
    p_new : array-like, shape (n,)
        New policy's probability of the same action in the same context.
    ci : float, default 0.95
    """
    r, w = _arrays(reward, p_log, p_new)
    terms = w * r
    return _result("IPS", terms.mean(), terms.std(ddof=1) / np.sqrt(len(terms)), w, ci)


def snips(reward: Sequence[float], p_log: Sequence[float], p_new: Sequence[float], *, ci: float = 0.95
          ) -> OffPolicyEstimate:
    """Self-normalised IPS (a ratio estimator; delta-method interval). Same arguments as :func:`ips`."""
    r, w = _arrays(reward, p_log, p_new)
    if w.sum() <= 0:
        raise ValueError("the new policy gives probability 0 to every logged action: no overlap, nothing to estimate")
    value = (w * r).sum() / w.sum()
    resid = w * (r - value) / w.mean()
    return _result("SNIPS", value, resid.std(ddof=1) / np.sqrt(len(r)), w, ci)


def doubly_robust(reward: Sequence[float], p_log: Sequence[float], p_new: Sequence[float],
                  q_logged: Sequence[float], q_new: Sequence[float], *, ci: float = 0.95) -> OffPolicyEstimate:
    """Doubly robust estimate.

    Parameters
    ----------
    reward, p_log, p_new : array-like, shape (n,)
        As in :func:`ips`.
    q_logged : array-like, shape (n,)
        Reward model's prediction for the logged (context, action).
    q_new : array-like, shape (n,)
        Reward model's expected reward of the new policy in each logged context,
        ``sum_a pi_new(a|x) * q(x, a)``.
    ci : float, default 0.95
    """
    r, w = _arrays(reward, p_log, p_new)
    ql = np.asarray(q_logged, dtype=np.float64)
    qn = np.asarray(q_new, dtype=np.float64)
    if ql.shape != r.shape or qn.shape != r.shape:
        raise ValueError(f"q_logged and q_new must have shape {r.shape}; got {ql.shape}, {qn.shape}")
    if not (np.isfinite(ql).all() and np.isfinite(qn).all()):
        raise ValueError("q_logged / q_new contain NaN or inf")
    terms = qn + w * (r - ql)
    return _result("DR", terms.mean(), terms.std(ddof=1) / np.sqrt(len(terms)), w, ci)


def softmax_policy(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (probabilities over each row's candidates)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    z = np.asarray(scores, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ExposureSimulator:
    """Logged impressions with a known ground truth, from a catalog whose users' tastes are known.

    Each impression: a user (uniform) is shown ``n_candidates`` random items; the logging
    policy picks one with ``softmax(logging_score / logging_temperature)``; the user clicks
    with probability ``sigmoid(base + slope * matches)`` where ``matches`` counts how many of
    the item's category, colour and pattern are among the user's tastes.

    Parameters
    ----------
    items : DataFrame
        ``item_id`` and ``attributes`` (dict with ``category``, ``colour``, ``pattern``), e.g.
        ``make_sample_catalog().items``.
    users : DataFrame
        ``user_id``, ``taste_categories``, ``taste_colours``, ``taste_patterns`` (lists).
    n_candidates : int, default 10
    base, slope : float
        Click model.
    seed : int
    """

    def __init__(self, items: pd.DataFrame, users: pd.DataFrame, *, n_candidates: int = 10, base: float = -3.0,
                 slope: float = 1.2, seed: int = 0) -> None:
        need = {"taste_categories", "taste_colours", "taste_patterns", "user_id"} - set(users.columns)
        if need:
            raise ValueError(f"users lacks columns {sorted(need)}: the simulator needs known tastes "
                             f"(make_sample_catalog(...).users has them)")
        if n_candidates < 2 or n_candidates > len(items):
            raise ValueError(f"n_candidates must be in [2, {len(items)}]; got {n_candidates}")
        self.item_ids = items["item_id"].astype(str).to_numpy()
        self.user_ids = users["user_id"].astype(str).to_numpy()
        attrs = items["attributes"].tolist()
        m = np.zeros((len(users), len(items)), dtype=np.int64)
        for u, row in enumerate(users.itertuples(index=False)):
            cats, cols, pats = set(row.taste_categories), set(row.taste_colours), set(row.taste_patterns)
            m[u] = [(a.get("category") in cats) + (a.get("colour") in cols) + (a.get("pattern") in pats)
                    for a in attrs]
        self.matches = m
        self.click_prob = 1 / (1 + np.exp(-(base + slope * m)))
        self.n_candidates = n_candidates
        self.rng = np.random.default_rng(seed)

    def log(self, n: int, logging_score: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
            logging_temperature: float = 1.0) -> dict[str, np.ndarray]:
        """Simulate ``n`` impressions of the logging policy.

        ``logging_score(user_rows, item_rows)`` gets ``(n,)`` user rows and ``(n, K)`` item rows
        and returns ``(n, K)`` scores. Returns arrays: ``user`` (n,), ``candidates`` (n, K),
        ``choice`` (n,) position picked, ``item`` (n,), ``p_log`` (n,), ``reward`` (n,).
        """
        rng = self.rng
        users = rng.integers(0, len(self.user_ids), n)
        cands = self._candidates(rng, n)
        probs = softmax_policy(logging_score(users, cands), logging_temperature)
        choice = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
        item = cands[np.arange(n), choice]
        reward = (rng.random(n) < self.click_prob[users, item]).astype(np.float64)
        return {"user": users, "candidates": cands, "choice": choice, "item": item,
                "p_log": probs[np.arange(n), choice], "reward": reward}

    def _candidates(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` rows of ``n_candidates`` distinct random item rows."""
        return rng.random((n, len(self.item_ids))).argpartition(self.n_candidates - 1, axis=1)[:, : self.n_candidates]

    def true_value(self, logs: dict[str, np.ndarray], new_probs: np.ndarray) -> float:
        """Exact expected reward of a policy giving ``new_probs`` (n, K) over the logged contexts.

        The contexts (user, candidate set) are the logged ones, so this is the estimand the
        off-policy estimators target on these logs.
        """
        p = self.click_prob[logs["user"][:, None], logs["candidates"]]
        return float((new_probs * p).sum(axis=1).mean())

    def population_value(self, score: Callable[[np.ndarray, np.ndarray], np.ndarray], temperature: float, *,
                         n: int = 200_000) -> float:
        """Expected reward of a softmax policy over fresh contexts (Monte Carlo over contexts, exact over actions)."""
        rng = np.random.default_rng(12345)
        users = rng.integers(0, len(self.user_ids), n)
        cands = np.concatenate([self._candidates(rng, min(20_000, n - s)) for s in range(0, n, 20_000)])
        probs = softmax_policy(score(users, cands), temperature)
        return float((probs * self.click_prob[users[:, None], cands]).sum(axis=1).mean())
