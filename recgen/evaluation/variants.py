"""Evaluation variant kinds: one table, from which ``recgen evaluate``'s config checks and runs derive.

A variant kind turns a split into top-``k`` lists. The core registers the kinds it can run
by itself (``popularity``, ``random``, ``recgen``, ``als``, ``bpr``); plugins add theirs
through :meth:`recgen.plugins.PluginRegistry.add_variant_kind` (``recgen_adapters`` adds
``als+recgen``, a CF model re-ranked with recgen features). Adding a kind is one
:class:`VariantKind` entry plus its test.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["VariantContext", "VariantKind", "register_variant_kind", "variant_kinds"]


@dataclass
class VariantContext:
    """What a variant may use to rank (everything comes from one split of one catalog).

    Attributes
    ----------
    catalog : CatalogData
        The whole catalog (items, reviews, interactions).
    train, val, test, history : DataFrame
        The split; ``history`` is ``train`` + ``val`` (what the final lists may use).
    users : list of str
        Test users to rank for.
    items : ndarray of str
        Every item id.
    k, seed : int
    recgen_on : callable
        ``recgen_on(name, part)`` -> a :class:`~recgen.model.Recgen` fitted on ``part``
        (cached by ``name``: ``"train"`` or ``"all"``), with no review from after ``part``.
    echo : callable
        Where progress messages go.
    """

    catalog: Any
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    history: pd.DataFrame
    users: list[str]
    items: np.ndarray
    k: int
    seed: int
    recgen_on: Callable[[str, pd.DataFrame], Any]
    echo: Callable[[str], None]


@dataclass(frozen=True)
class VariantKind:
    """One kind of ``[[variants]]`` entry.

    Attributes
    ----------
    name : str
        The ``kind = "..."`` value.
    rank : callable
        ``rank(ctx, options) -> {user_id: [item_id, ...]}`` (best first, at most ``ctx.k``).
    options : frozenset of str
        Keys a variant of this kind may set besides ``name`` and ``kind``.
    description : str
        One line for docs and error messages.
    """

    name: str
    rank: Callable[[VariantContext, dict[str, Any]], dict[str, list[str]]]
    options: frozenset[str] = frozenset()
    description: str = ""


_KINDS: dict[str, VariantKind] = {}
_LOCK = threading.Lock()


def register_variant_kind(kind: VariantKind) -> None:
    """Add ``kind`` to the table; a name may be registered once."""
    if not isinstance(kind, VariantKind):
        raise TypeError(f"kind must be a VariantKind; got {type(kind).__name__}")
    with _LOCK:
        if kind.name in _KINDS:
            raise ValueError(f"variant kind {kind.name!r} is already registered")
        _KINDS[kind.name] = kind


def variant_kinds() -> dict[str, VariantKind]:
    """Every registered kind (plugins loaded), by name."""
    from recgen.plugins import load_plugins

    load_plugins()
    return dict(_KINDS)


def ranked_lists(cands: pd.DataFrame, col: str, k: int) -> dict[str, list[str]]:
    """``{user: [item, ...]}`` from a candidate frame ordered by ``col`` (ascending rank)."""
    c = cands.sort_values(["user_id", col], kind="stable")
    return {u: g["item_id"].tolist()[:k] for u, g in c.groupby("user_id", sort=False)}


# ------------------------------------------------------------------ built-in kinds
CF_OPTIONS = frozenset({"factors", "regularization", "iterations"})


def cf_candidates(kind: str, options: dict[str, Any], history: pd.DataFrame, users, items, n: int,
                  seed: int) -> pd.DataFrame:
    """Top-``n`` unseen items per user from implicit's ALS/BPR fitted on ``history``."""
    from recgen.interop import implicit_candidates, implicit_model

    model = implicit_model(kind, seed=seed, **{o: options[o] for o in CF_OPTIONS if o in options})
    return implicit_candidates(model, history, users, items, n=n)


def _popularity(ctx: VariantContext, options: dict[str, Any]) -> dict[str, list[str]]:
    from recgen.evaluation.ranking import popularity_rankings

    return popularity_rankings(ctx.history, ctx.users, ctx.k)


def _random(ctx: VariantContext, options: dict[str, Any]) -> dict[str, list[str]]:
    from recgen.evaluation.ranking import random_rankings

    return random_rankings(ctx.items, ctx.history, ctx.users, ctx.k, seed=ctx.seed)


def _recgen(ctx: VariantContext, options: dict[str, Any]) -> dict[str, list[str]]:
    ids, _ = ctx.recgen_on("all", ctx.history).recommend_batch(ctx.users, k=ctx.k)
    return {u: [i for i in row if i] for u, row in zip(ctx.users, ids)}


def _cf(kind: str):
    def rank(ctx: VariantContext, options: dict[str, Any]) -> dict[str, list[str]]:
        return ranked_lists(cf_candidates(kind, options, ctx.history, ctx.users, ctx.items, ctx.k, ctx.seed),
                            "cf_rank", ctx.k)

    return rank


for _kind in (
    VariantKind("popularity", _popularity, description="most interacted items in the history, unseen ones"),
    VariantKind("random", _random, description="random unseen items (seeded)"),
    VariantKind("recgen", _recgen, description="recgen content recommendations (taste vs fused item vectors)"),
    VariantKind("als", _cf("als"), CF_OPTIONS, "implicit ALS (needs recgen[cf])"),
    VariantKind("bpr", _cf("bpr"), CF_OPTIONS, "implicit BPR, single-threaded (needs recgen[cf])"),
):
    register_variant_kind(_kind)
