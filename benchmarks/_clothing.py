"""The clothing-reviews split the blurb benchmarks share (`bench_blurbs.py`, `bench_generate.py --part blurbs`).

Imported by those scripts (run from anywhere: Python puts the script's folder on ``sys.path``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class ClothingSplit:
    """Items with at least 4 reviews, their training reviews and the held-out references."""

    catalog: object  # recgen.catalog.CatalogData with the training reviews only
    items: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    eval_items: list[str]  # items with both training and held-out reviews
    refs: list[list[str]]  # each eval item's held-out review texts
    features: list[str]  # each eval item's class as a singular word (for FMR)
    rng: np.random.Generator  # the split's generator after its draws (the scripts' later draws continue it)


def singular(word: str) -> str:
    """Class names are plural ("Dresses", "Knits", "Pants"); reviews mostly use the singular."""
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "pants", "jeans", "shorts")):
        return word[:-1]
    return word


def clothing_split(path, *, items: int, max_reviews: int, seed: int) -> ClothingSplit:
    """The ``items`` most-reviewed items (``max_reviews`` each); 25 % of their reviews held out (seeded)."""
    from recgen.catalog import CatalogData
    from recgen.datasets import load_clothing_reviews

    data = load_clothing_reviews(path)
    reviews = data.reviews.reset_index(drop=True)
    counts = reviews["item_id"].value_counts()
    keep = counts[counts >= 4].index[:items]
    reviews = reviews[reviews["item_id"].isin(keep)]
    reviews = reviews.groupby("item_id", group_keys=False).head(max_reviews).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    held = rng.random(len(reviews)) < 0.25
    train, test = reviews[~held], reviews[held]
    kept = data.items[data.items["item_id"].isin(keep)].reset_index(drop=True)
    in_train, in_test = set(train["item_id"]), set(test["item_id"])
    eval_items = [i for i in kept["item_id"] if i in in_test and i in in_train]
    by_id = kept.set_index("item_id")
    return ClothingSplit(
        catalog=CatalogData(items=kept, reviews=train, name="clothing"), items=kept, train=train, test=test,
        eval_items=eval_items, refs=[test.loc[test["item_id"] == i, "text"].tolist() for i in eval_items],
        features=[singular(str(by_id.at[i, "attributes"].get("class", "")).lower()) or "dress" for i in eval_items],
        rng=rng)
