"""Blurb generators on a tiny hand-made catalog with a fake (hashing) sentence encoder."""
from __future__ import annotations

import re
import zlib

import numpy as np
import pandas as pd
import pytest

from recgen.errors import UnknownIdError
from recgen.generators.grounded import GroundedBlurbConfig, GroundedBlurbGenerator, split_sentences

DIM = 64


def encode(texts):
    """Bag of words hashed into 64 dims, unit rows: deterministic and model-free."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[i, zlib.crc32(w.encode()) % DIM] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


ITEMS = pd.DataFrame({
    "item_id": ["A", "B", "C"],
    "title": ["Red mug", "Blue lamp", "Plain thing"],
    "description": ["A red ceramic mug for coffee. It holds a large cup of tea.",
                    "A blue metal lamp for the desk. The bright bulb lights the whole room.", ""],
})
REVIEWS = pd.DataFrame({
    "item_id": ["A", "A", "B", "B"],
    "text": ["The glaze is glossy and smooth to touch. Great gift for a friend.",
             "Handle broke after a week and it leaked badly.",
             "Perfect reading light for late evenings.",
             "Flickers constantly and buzzes."],
    "rating": [5.0, 1.0, 5.0, 2.0],
})


@pytest.fixture(scope="module")
def gen():
    return GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=2)).fit(ITEMS, REVIEWS, encode=encode)


def own_sentences(item_id):
    desc = ITEMS.set_index("item_id").at[item_id, "description"]
    revs = REVIEWS[(REVIEWS["item_id"] == item_id) & (REVIEWS["rating"] >= 4)]["text"]
    return set(split_sentences(desc)) | {s for t in revs for s in split_sentences(t)}


def test_sentences_are_verbatim_own_and_traceable(gen):
    out = gen.generate(["A", "B"], encode(["coffee glaze", "reading evenings"]))
    for item_id, text, sources in zip(out.item_ids, out.texts, out.sources):
        picked = split_sentences(text)
        assert picked and set(picked) <= own_sentences(item_id)
        assert len(sources) == len(picked)
        for s, src in zip(picked, sources):
            if src == "description":
                assert s in ITEMS.set_index("item_id").at[item_id, "description"]
            else:
                assert s in REVIEWS.loc[int(src.split(":")[1]), "text"]
    # low-rated review sentences are never used
    every = " ".join(gen.generate(["A", "B"] * 3, encode(["handle broke leaked", "flickers buzzes"] * 3)).texts)
    assert "broke" not in every and "Flickers" not in every


def test_personalization_puts_the_closest_sentence_first(gen):
    target = "Great gift for a friend."
    out = gen.generate(["A"], encode([target]))
    assert out.texts[0].startswith(target)
    other = gen.generate(["A"], encode(["A red ceramic mug for coffee."]))
    assert other.texts[0].startswith("A red ceramic mug for coffee.")


def test_neutral_user_gets_first_description_sentence(gen):
    out = gen.generate(["B"], np.zeros((1, DIM), np.float32))
    assert out.texts[0].startswith("A blue metal lamp for the desk.")


def test_title_fallback_limits_and_errors(gen):
    assert gen.generate(["C"], np.zeros((1, DIM), np.float32)).texts == ["Plain thing"]
    short = GroundedBlurbGenerator(GroundedBlurbConfig(max_chars=30)).fit(ITEMS, REVIEWS, encode=encode)
    t = short.generate(["B"], np.zeros((1, DIM), np.float32)).texts[0]
    assert len(t) <= 30 and t.endswith("…")
    with pytest.raises(UnknownIdError, match="Z"):
        gen.generate(["Z"], np.zeros((1, DIM), np.float32))
    with pytest.raises(ValueError, match="shape"):
        gen.generate(["A", "B"], np.zeros((1, DIM), np.float32))


def test_save_load_round_trip(gen, tmp_path):
    gen.save(tmp_path / "g")
    loaded = GroundedBlurbGenerator.load(tmp_path / "g")
    u = encode(["coffee", "room"])
    assert loaded.generate(["A", "B"], u).texts == gen.generate(["A", "B"], u).texts


def test_split_sentences_keeps_abbreviations():
    assert split_sentences("Holds approx. three cups. Fits e.g. a bag!  Nice.") == [
        "Holds approx. three cups.", "Fits e.g. a bag!", "Nice."]


# ----------------------------------------------------------------------------- PETER
from recgen.errors import ModelFitError, NotFittedError  # noqa: E402
from recgen.generators.peter import PeterBlurbGenerator, PeterConfig  # noqa: E402


def peter_data(n=120):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 2, n)
    texts = ["the red mug is great for coffee ." if k == 0 else "the blue lamp is bright at night ." for k in lab]
    items = np.eye(2, dtype=np.float32)[lab]
    users = np.zeros((n, 3), np.float32)
    return texts, users, items


def tiny_peter(**kw):
    return PeterConfig(**{"d_model": 32, "n_heads": 2, "n_layers": 1, "epochs": 30, "batch_size": 32,
                          "min_freq": 1, "lr": 3e-3, "dropout": 0.0, **kw})


@pytest.fixture(scope="module")
def peter():
    texts, users, items = peter_data()
    return PeterBlurbGenerator(tiny_peter()).fit(texts, users, items)


def test_peter_conditioning_on_item_vector(peter):
    out = peter.generate(np.eye(2, dtype=np.float32), np.zeros((2, 3), np.float32))
    assert "red" in out[0] and "blue" not in out[0]
    assert "blue" in out[1] and "red" not in out[1]
    assert peter.history["loss"][-1] < peter.history["loss"][0]


def test_peter_determinism_and_save_load(peter, tmp_path):
    items, users = np.eye(2, dtype=np.float32), np.zeros((2, 3), np.float32)
    a = peter.generate(items, users, seed=1, temperature=1.0)
    assert a == peter.generate(items, users, seed=1, temperature=1.0)
    peter.save(tmp_path / "p")
    loaded = PeterBlurbGenerator.load(tmp_path / "p")
    assert loaded.generate(items, users) == peter.generate(items, users)
    out = loaded.generate_blurbs(["A", "B"], items, users)
    assert out.item_ids == ["A", "B"] and out.sources == [[], []]


def test_peter_errors():
    texts, users, items = peter_data(20)
    with pytest.raises(ModelFitError, match="lower lr"):
        PeterBlurbGenerator(tiny_peter(lr=1e30, epochs=3)).fit(texts, users, items * 1e30)
    with pytest.raises(ValueError, match="paired"):
        PeterBlurbGenerator(tiny_peter()).fit(texts, users[:5], items)
    with pytest.raises(NotFittedError):
        PeterBlurbGenerator().generate(items, users)
    with pytest.raises(ValueError, match="divisible"):
        PeterConfig(d_model=30, n_heads=4)
