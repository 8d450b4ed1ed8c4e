"""Blurb generators on a tiny hand-made catalog with a fake (hashing) sentence encoder."""
from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pandas as pd
import pytest

from recgen.errors import ArtifactError, ModelFitError, NotFittedError, UnknownIdError
from recgen.generators.base import BlurbOutput
from recgen.generators.grounded import GroundedBlurbConfig, GroundedBlurbGenerator, split_sentences
from recgen.generators.peter import PeterBlurbGenerator, PeterConfig, target_tokens, tokenize

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
# a non-default index: provenance must name the caller's row labels
REVIEWS = pd.DataFrame({
    "item_id": ["A", "A", "B", "B", "C"],
    "text": ["The glaze is glossy and smooth to touch. Great gift for a friend.",
             "Handle broke after a week and it leaked badly.",
             "Perfect reading light for late evenings. works with any bulb i tried.",
             "Flickers constantly and buzzes.",
             "Meh."],
    "rating": [5.0, 1.0, 5.0, 2.0, 5.0],
}, index=[10, 11, 12, 13, 14])
ZERO = np.zeros((1, DIM), np.float32)


@pytest.fixture(scope="module")
def gen():
    return GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=2)).fit_frames(ITEMS, REVIEWS, encode=encode)


def source_text(item_id, src):
    if src == "description":
        return ITEMS.set_index("item_id").at[item_id, "description"]
    assert src.startswith("review:")
    label = int(src.split(":")[1])
    assert REVIEWS.at[label, "item_id"] == item_id and REVIEWS.at[label, "rating"] >= 4
    return REVIEWS.at[label, "text"]


def picked_sentences(gen, out, i):
    """Map the blurb back to candidate sentences via its sources (verbatim by construction)."""
    k = gen.item_ids_.index(out.item_ids[i])
    cands = gen.sentences_[gen.ptr_[k]:gen.ptr_[k + 1]]
    picked, rest = [], out.texts[i]
    while rest:
        match = [s for s in cands if rest.startswith(s) or rest.startswith(s[:1].upper() + s[1:])]
        assert match, f"{rest!r} does not start with one of the item's sentences"
        s = max(match, key=len)
        picked.append(s)
        rest = rest[len(s):].lstrip()
    return picked


def test_blurbs_are_verbatim_sentences_with_exact_provenance(gen):
    queries = ["coffee glaze", "reading evenings", "glossy gift", "bulb room desk", "tea", "buzz"]
    for q in queries:
        out = gen.generate_vectors(["A", "B"], encode([q, q]))
        assert isinstance(out, BlurbOutput) and out.item_ids == ["A", "B"]
        for i, item_id in enumerate(out.item_ids):
            picked = picked_sentences(gen, out, i)
            assert 1 <= len(picked) <= 2 and len(picked) == len(out.sources[i])
            for s, src in zip(picked, out.sources[i]):
                assert s in source_text(item_id, src)  # the provenance holds this exact sentence
            other = "B" if item_id == "A" else "A"
            others = split_sentences(ITEMS.set_index("item_id").at[other, "description"]) + [
                s for t in REVIEWS.loc[REVIEWS["item_id"] == other, "text"] for s in split_sentences(t)]
            assert not any(s in out.texts[i] for s in others)


def test_low_rated_review_sentences_are_never_used(gen):
    assert "Handle broke" not in gen.sentences_ and not any("Flickers" in s for s in gen.sentences_)
    out = gen.generate_vectors(["A", "B"] * 3, encode(["handle broke leaked badly", "flickers constantly buzzes"] * 3))
    every = " ".join(out.texts).lower()
    assert "broke" not in every and "flickers" not in every


def test_without_ratings_every_review_is_used():
    g = GroundedBlurbGenerator().fit_frames(ITEMS, REVIEWS.drop(columns="rating"), encode=encode)
    assert "Handle broke after a week and it leaked badly." in g.sentences_


def test_personalization_puts_the_closest_sentence_first(gen):
    for item_id, target, src in (("A", "Great gift for a friend.", "review:10"),
                                 ("A", "It holds a large cup of tea.", "description"),
                                 ("B", "Perfect reading light for late evenings.", "review:12")):
        out = gen.generate_vectors([item_id], encode([target]))
        assert out.texts[0].startswith(target) and out.sources[0][0] == src


def test_neutral_user_gets_first_description_sentence_then_a_review(gen):
    out = gen.generate_vectors(["B", "A"], np.zeros((2, DIM), np.float32))
    assert out.texts[0].startswith("A blue metal lamp for the desk.")
    assert out.texts[1].startswith("A red ceramic mug for coffee.")
    assert [s.split(":")[0] for s in out.sources[0]] == ["description", "review"]


def test_title_fallback_max_chars_and_errors(gen):
    # C's only review is too short to be a sentence: the title is its one statement
    out = gen.generate_vectors(["C"], ZERO)
    assert out.texts == ["Plain thing"] and out.sources == [["title"]]
    for cap in (40, 60, 100):
        short = GroundedBlurbGenerator(GroundedBlurbConfig(max_chars=cap)).fit_frames(ITEMS, REVIEWS, encode=encode)
        for q in ("lamp desk", "reading", "bulb"):
            out = short.generate_vectors(["B"], encode([q]))
            assert len(out.texts[0]) <= cap and picked_sentences(short, out, 0)  # whole sentences only
    tiny = GroundedBlurbGenerator(GroundedBlurbConfig(max_chars=20)).fit_frames(ITEMS, REVIEWS, encode=encode)
    assert len(tiny.generate_vectors(["A"], ZERO).texts[0]) <= 20  # nothing fits: cut at a word boundary
    with pytest.raises(UnknownIdError, match="Z"):
        gen.generate_vectors(["A", "Z"], np.zeros((2, DIM), np.float32))
    with pytest.raises(KeyError):
        gen.generate_vectors(["Z"], ZERO)
    with pytest.raises(ValueError, match="shape"):
        gen.generate_vectors(["A", "B"], ZERO)
    with pytest.raises(NotFittedError):
        GroundedBlurbGenerator().generate_vectors(["A"], ZERO)
    with pytest.raises(ValueError, match="title"):
        GroundedBlurbGenerator().fit_frames(ITEMS.drop(columns="title"), REVIEWS, encode=encode)


def test_deterministic_and_ties_broken_by_seed():
    items = pd.DataFrame({"item_id": ["T"], "title": ["t"], "description": [""]})
    reviews = pd.DataFrame({"item_id": ["T"] * 4, "rating": [5] * 4,
                            "text": ["one two three.", "three two one.", "two one three.", "one three two."]})
    g = GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=1)).fit_frames(items, reviews, encode=encode)
    u = encode(["one two three"])  # every sentence has the same bag of words: exact ties
    firsts = {g.generate_vectors(["T"], u, seed=s).texts[0] for s in range(20)}
    assert len(firsts) > 1
    once = g.generate_vectors(["T"], u, seed=5).texts[0]
    assert g.generate_vectors(["T"] * 3, np.repeat(u, 3, 0), seed=5).texts == [once] * 3


def test_save_load_round_trip(gen, tmp_path):
    gen.save(tmp_path / "g")
    loaded = GroundedBlurbGenerator.load(tmp_path / "g")
    u = encode(["coffee", "room", "glossy"])
    a, b = loaded.generate_vectors(["A", "B", "A"], u), gen.generate_vectors(["A", "B", "A"], u)
    assert (a.texts, a.sources) == (b.texts, b.sources)
    (tmp_path / "g" / "sentences.json").write_text("{}")
    with pytest.raises(ArtifactError):
        GroundedBlurbGenerator.load(tmp_path / "g")


def test_split_sentences_keeps_abbreviations():
    assert split_sentences("Holds approx. three cups. fits e.g. a bag!  Nice.") == [
        "Holds approx. three cups.", "fits e.g. a bag!", "Nice."]
    assert split_sentences("I got a size M. It fits. 1.5 litres.\nNew line") == [
        "I got a size M.", "It fits.", "1.5 litres.", "New line"]


# ----------------------------------------------------------------------------- PETER
def peter_data(n=200):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 2, n)
    texts = ["The red mug is great. I use it daily." if k == 0 else "The blue lamp is bright! Lovely at night."
             for k in lab]
    items = np.eye(2, dtype=np.float32)[lab]
    users = np.zeros((n, 3), np.float32)
    return texts, users, items


def tiny_peter(**kw):
    return PeterConfig(**{"d_model": 32, "n_heads": 2, "n_layers": 1, "epochs": 30, "batch_size": 32,
                          "min_freq": 1, "lr": 3e-3, "dropout": 0.0, "max_len": 12, **kw})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; with two, OpenMP spin-waits stall on a busy 2-core box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def peter():
    texts, users, items = peter_data()
    return PeterBlurbGenerator(tiny_peter()).fit_arrays(texts, users, items)


def test_peter_tokenizer_and_targets():
    assert tokenize("Don't stop-gap, it's GREAT!") == ["don't", "stop-gap", ",", "it's", "great", "!"]
    assert target_tokens("One two. Three four five.", 4) == (["one", "two", "."], True)
    assert target_tokens("One two three four five.", 3) == (["one", "two", "three"], False)


def test_peter_conditioning_on_item_vector(peter):
    out = peter.generate_arrays(np.eye(2, dtype=np.float32), np.zeros((2, 3), np.float32))
    assert "red" in out[0] and "blue" not in out[0]
    assert "blue" in out[1] and "red" not in out[1]
    assert peter.history["loss"][-1] < peter.history["loss"][0]
    assert len(peter.history["loss"]) == len(peter.history["seconds"]) == 30


def test_peter_shapes_determinism_and_save_load(peter, tmp_path):
    items, users = np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1]], np.zeros((5, 3), np.float32)
    a = peter.generate_arrays(items, users, seed=1, temperature=1.0)
    assert len(a) == 5 and all(isinstance(t, str) and t for t in a)
    assert a == peter.generate_arrays(items, users, seed=1, temperature=1.0)
    assert all(len(tokenize(t)) <= 3 for t in peter.generate_arrays(items, users, max_len=3))
    peter.save(tmp_path / "p")
    loaded = PeterBlurbGenerator.load(tmp_path / "p")
    assert loaded.generate_arrays(items, users) == peter.generate_arrays(items, users)
    assert loaded.generate_arrays(items, users, seed=4, temperature=0.8) == peter.generate_arrays(items, users, seed=4,
                                                                                    temperature=0.8)
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors"} and manifest["config"]["torch_state"]["modules"] == ["net"]


def test_peter_two_epochs_and_errors():
    texts, users, items = peter_data(40)
    g = PeterBlurbGenerator(tiny_peter(epochs=2)).fit_arrays(texts, users, items)
    assert len(g.history["loss"]) == 2 and g.vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    with pytest.raises(ModelFitError, match="lower lr"):
        PeterBlurbGenerator(tiny_peter(lr=1e30, epochs=3)).fit_arrays(texts, users, items * 1e30)
    with pytest.raises(ValueError, match="paired"):
        PeterBlurbGenerator(tiny_peter()).fit_arrays(texts, users[:5], items)
    with pytest.raises(ValueError, match="NaN"):
        PeterBlurbGenerator(tiny_peter()).fit_arrays(texts, users * np.nan, items)
    with pytest.raises(NotFittedError):
        PeterBlurbGenerator().generate_arrays(items, users)
    with pytest.raises(ValueError, match="shapes"):
        g.generate_arrays(items[:2], users[:3])
    with pytest.raises(ValueError, match="divisible"):
        PeterConfig(d_model=30, n_heads=4)


def test_peter_adaptive_softmax_for_large_vocabularies(tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in range(1500)]
    texts = [" ".join(rng.choice(words, 8)) + "." for _ in range(600)]
    users, items = np.zeros((600, 3), np.float32), rng.normal(size=(600, 4)).astype(np.float32)
    g = PeterBlurbGenerator(tiny_peter(epochs=1, max_len=10)).fit_arrays(texts, users, items)
    assert len(g.vocab) > 1000 and type(g._net.out).__name__ == "AdaptiveLogSoftmaxWithLoss"
    g.save(tmp_path / "a")
    out = PeterBlurbGenerator.load(tmp_path / "a").generate_arrays(items[:3], users[:3], seed=2, temperature=1.0)
    assert out == g.generate_arrays(items[:3], users[:3], seed=2, temperature=1.0) and all(out)
