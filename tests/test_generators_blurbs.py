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


def unquote(text):
    """The blurb without the review attribution (review sentences are quoted verbatim)."""
    text = re.sub(r"(A reviewer writes|Reviewers write): ", "", text)
    return text.replace('" and "', " ").replace('", "', " ").replace('"', "")


def picked_sentences(gen, out, i):
    """Map the blurb back to candidate sentences via its sources (verbatim by construction)."""
    k = gen.item_ids_.index(out.item_ids[i])
    cands = gen.sentences_[gen.ptr_[k]:gen.ptr_[k + 1]]
    picked, rest = [], unquote(out.texts[i])
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


def test_without_ratings_every_review_is_used_but_only_praise_is_quoted():
    g = GroundedBlurbGenerator(GroundedBlurbConfig(min_praise=None)).fit_frames(
        ITEMS, REVIEWS.drop(columns="rating"), encode=encode)
    assert "Handle broke after a week and it leaked badly." in g.sentences_
    g = GroundedBlurbGenerator().fit_frames(ITEMS, REVIEWS.drop(columns="rating"), encode=encode)
    assert "Handle broke after a week and it leaked badly." not in g.sentences_  # the sentence filter still holds
    assert "Great gift for a friend." in g.sentences_


def test_personalization_puts_the_closest_sentence_first(gen):
    for item_id, target, src in (("A", "Great gift for a friend.", "review:10"),
                                 ("A", "It holds a large cup of tea.", "description"),
                                 ("B", "Perfect reading light for late evenings.", "review:12")):
        out = gen.generate_vectors([item_id], encode([target]))
        assert unquote(out.texts[0]).startswith(target) and out.sources[0][0] == src


def test_neutral_user_gets_first_description_sentence_then_a_review(gen):
    out = gen.generate_vectors(["B", "A"], np.zeros((2, DIM), np.float32))
    assert out.texts[0].startswith("A blue metal lamp for the desk.")
    assert out.texts[1].startswith("A red ceramic mug for coffee.")
    assert [s.split(":")[0] for s in out.sources[0]] == ["description", "review"]
    assert out.texts[0].endswith('A reviewer writes: "Perfect reading light for late evenings."')
    assert out.anchors == [None, None]


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
    g = GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=1, min_praise=None)).fit_frames(
        items, reviews, encode=encode)
    u = encode(["one two three"])  # every sentence has the same bag of words: exact ties
    firsts = {g.generate_vectors(["T"], u, seed=s).texts[0] for s in range(20)}
    assert len(firsts) > 1
    once = g.generate_vectors(["T"], u, seed=5).texts[0]
    assert g.generate_vectors(["T"] * 3, np.repeat(u, 3, 0), seed=5).texts == [once] * 3


def test_review_quotes_are_grouped_by_review(gen):
    items = pd.DataFrame({"item_id": ["Q"], "title": ["Q thing"], "description": [""]})
    reviews = pd.DataFrame({"item_id": ["Q"] * 2, "rating": [5, 5],
                            "text": ["Lovely soft fabric here. Great happy colour indeed.", "Wonderful gift, very happy."]})
    g = GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=3)).fit_frames(items, reviews, encode=encode)
    text = g.generate_vectors(["Q"], encode(["lovely soft fabric great happy colour wonderful gift"])).texts[0]
    assert text.startswith("Reviewers write: ") and text.count('"') == 4 and '" and "' in text


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


# ------------------------------------------------------------ blurbs that explain (issue 13)
SHOP = pd.DataFrame({
    "item_id": ["m1", "m2", "v1", "l1", "h1", "s1"],
    "title": ["Teal checkered mug", "Navy checkered mug", "Teal striped vase", "Red solid lamp", "Navy solid hat",
              "Red zigzag sneaker"],
    "description": [
        "The Nordic mug comes in teal with a checkered pattern. It is made of ceramic and just right for tea.",
        "Meet the Aurora: a navy mug with a checkered pattern. Made from glass, it is just right for morning coffee.",
        "A teal striped vase from the Willow line. It holds a generous bunch of fresh flowers.",
        "A red solid lamp from the Atlas line. It casts a warm glow on a desk.",
        "A navy solid hat from the Cove line. It keeps the sun off your face.",
        "A red zigzag sneaker from the Dune line. It is ready for long daily walks."],
    "attributes": [
        {"category": "mug", "colour": "teal", "pattern": "checkered", "material": "ceramic"},
        {"category": "mug", "colour": "navy", "pattern": "checkered", "material": "glass"},
        json.dumps({"category": "vase", "colour": "teal", "pattern": "striped", "material": "ceramic"}),
        {"category": "lamp", "colour": "red", "pattern": "solid", "material": "metal"},
        {"category": "hat", "colour": "navy", "pattern": "solid", "material": "wool"},
        None],
})
SHOP_REVIEWS = pd.DataFrame({
    "item_id": ["m2", "m2", "m2", "v1"],
    "text": ["Love the navy checkered pattern! The zipper broke after a week.",
             "Lovely gift for a friend, she was delighted.",
             "Great mug, but the handle is too small.",
             "Beautiful vase, my favourite piece."],
    "rating": [5.0, 5.0, 4.0, 5.0],
}, index=[20, 21, 22, 23])


@pytest.fixture(scope="module")
def shop():
    return GroundedBlurbGenerator().fit_frames(SHOP, SHOP_REVIEWS, encode=encode)


def attrs_of(item_id):
    from recgen.generators.grounded import parse_attributes

    return parse_attributes(SHOP.set_index("item_id").at[item_id, "attributes"])


def test_history_link_names_a_real_history_item_and_a_shared_attribute(shop):
    out = shop.generate_vectors(["m2"], ZERO, histories=[["l1", "m1", "s1"]])
    text, src = out.texts[0], out.sources[0]
    assert out.anchors == ["m1"]  # shares the checkered pattern (and the category); l1 and s1 share nothing
    assert text.startswith("You picked the teal checkered mug; this mug has the same checkered pattern, in navy.")
    assert src[:5] == ["history:m1", "attribute:category", "history:m1:pattern", "attribute:pattern",
                       "attribute:colour"]
    for s in src:
        if s.startswith("history:m1:"):
            name = s.rsplit(":", 1)[1]
            assert attrs_of("m1")[name] == attrs_of("m2")[name] and attrs_of("m2")[name] in text
    # a history item sharing only the category links as "also a mug"; one sharing nothing never links
    only_kind = GroundedBlurbGenerator().fit_frames(SHOP.assign(attributes=[
        {"category": "mug", "colour": "teal"}, {"category": "mug", "colour": "navy"}, {"category": "vase"},
        {"category": "lamp"}, {"category": "hat"}, {"category": "sneaker"}]), SHOP_REVIEWS, encode=encode)
    out = only_kind.generate_vectors(["m2"], ZERO, histories=[["m1"]])
    assert out.texts[0].startswith("You picked the teal checkered mug; this one is also a mug, in navy.")
    assert shop.generate_vectors(["m2"], ZERO, histories=[["l1", "s1", "m2", "nope"]]).anchors == [None]


def test_the_most_informative_shared_value_picks_the_history_item(shop):
    # h1 shares the colour navy (2 of 6 items), m1 the pattern checkered (2 of 6) and the category mug (2 of 6):
    # m1 shares more information
    assert shop.generate_vectors(["m2"], ZERO, histories=[["h1", "m1"]]).anchors == ["m1"]
    assert shop.generate_vectors(["m2"], ZERO, histories=[["h1"]]).anchors == ["h1"]
    text = shop.generate_vectors(["m2"], ZERO, histories=[["h1"]]).texts[0]
    assert text.startswith("You picked the navy solid hat; this mug has the same navy colour, with a checkered pattern.")
    # a value most items carry does not link
    common = GroundedBlurbGenerator(GroundedBlurbConfig(max_link_share=0.2)).fit_frames(SHOP, SHOP_REVIEWS, encode=encode)
    assert common.generate_vectors(["m2"], ZERO, histories=[["h1"]]).anchors == [None]


def cited_faithfulness(gen, out):
    from recgen.evaluation.content import blurb_evidence
    from recgen.evaluation.generation import faithfulness
    from recgen.generators.grounded import TEMPLATE_WORDS

    cited = [blurb_evidence(SHOP, SHOP_REVIEWS, i, s) for i, s in zip(out.item_ids, out.sources)]
    return faithfulness(out.texts, cited, connectives=TEMPLATE_WORDS)


def test_sources_trace_every_clause(shop):
    items = ["m2", "m1", "v1", "l1", "h1", "s1"] * 3
    hists = [["m1", "h1"], ["m2"], ["m1"], ["s1"], ["m2"], ["l1"]] + [[]] * 6 + [["h1"], ["v1"], [], ["h1"], [], []]
    users = encode(["gift friend", "tea", "flowers", "desk", "sun", "walks"] * 2 + [""] * 6)
    out = shop.generate_vectors(items, users, histories=hists)
    f = cited_faithfulness(shop, out)
    assert f["mean"] == 1.0, [(t, u) for t, u in zip(out.texts, f["unsupported"]) if u]
    assert any(a is not None for a in out.anchors) and any(a is None for a in out.anchors)
    for text, src, anchor, hist in zip(out.texts, out.sources, out.anchors, hists):
        assert (anchor is not None) == text.startswith("You picked") == any(s.startswith("history:") for s in src)
        assert anchor is None or anchor in hist
    # the check can fail: a link clause whose history source is dropped is caught
    broken = BlurbOutput(texts=out.texts, item_ids=out.item_ids,
                         sources=[[s for s in src if not s.startswith("history:")] for src in out.sources])
    assert cited_faithfulness(shop, broken)["mean"] < 1.0


def test_negative_sentence_of_a_five_star_review_is_never_quoted(shop):
    assert not any("zipper" in s for s in shop.sentences_)
    assert not any("handle is too small" in s for s in shop.sentences_)  # "but": a complaint after the cue
    assert "Lovely gift for a friend, she was delighted." in shop.sentences_
    for q in ("zipper broke week", "handle small", "love navy checkered", ""):
        for hist in ([], ["m1"], ["h1"]):
            out = shop.generate_vectors(["m2"], encode([q]) if q else ZERO, histories=[hist])
            assert "zipper" not in out.texts[0].lower() and "handle" not in out.texts[0].lower()


def test_praise_filter():
    from recgen.generators.sentiment import PraiseFilter

    f = PraiseFilter()
    assert not f.is_praise("The zipper broke after a week.")
    assert not f.is_praise("I wanted to love this dress, but it runs small.")
    assert not f.is_praise("It arrived on a Tuesday in a box.")  # neutral is not praise
    assert f.is_praise("Love the teal stripes, the wool feels sturdy.")
    with pytest.raises(ValueError, match="min_compound"):
        PraiseFilter(2.0)


def test_no_fact_is_stated_twice(shop):
    values = {i: [v.lower() for k, v in attrs_of(i).items() if k != "category"] for i in SHOP["item_id"]}
    for item, hist in (("m2", ["m1"]), ("m2", ["h1"]), ("m2", []), ("v1", ["m1"]), ("m1", ["m2"])):
        for q in ("", "navy checkered pattern", "gift"):
            out = shop.generate_vectors([item], encode([q]) if q else ZERO, histories=[hist])
            words = re.findall(r"[a-z]+", unquote(out.texts[0]).split(";", 1)[-1].lower())  # after "You picked <title>;"
            for v in values[item]:
                assert words.count(v) <= 1, (out.texts[0], v)


def test_neutral_user_gets_a_non_personal_blurb(shop):
    out = shop.generate_vectors(["m2", "v1"], np.zeros((2, DIM), np.float32), histories=[[], []])
    assert out.anchors == [None, None]
    assert not any(t.startswith("You") for t in out.texts)
    assert out.texts[0].startswith("Meet the Aurora: a navy mug with a checkered pattern.")
    assert all(not s.startswith(("history", "attribute")) for src in out.sources for s in src)
    assert out.texts == shop.generate_vectors(["m2", "v1"], np.zeros((2, DIM), np.float32)).texts


def test_rows_are_independent_and_deterministic(shop):
    items = ["m2", "m1", "v1", "m2"]
    hists = [["m1"], ["m2", "v1"], [], ["h1", "m1"]]
    users = encode(["gift", "tea", "", "checkered"])
    a = shop.generate_vectors(items, users, histories=hists, seed=4)
    for i in range(len(items)):
        one = shop.generate_vectors([items[i]], users[i:i + 1], histories=[hists[i]], seed=4)
        assert (one.texts[0], one.sources[0], one.anchors[0]) == (a.texts[i], a.sources[i], a.anchors[i])
    b = shop.generate_vectors(items[::-1], users[::-1], histories=[h[::-1] for h in hists[::-1]], seed=4)
    assert b.texts[::-1] == a.texts and b.anchors[::-1] == a.anchors
    with pytest.raises(ValueError, match="histories"):
        shop.generate_vectors(items, users, histories=hists[:2])


def test_explain_and_anchor_of(shop):
    from recgen.generators.grounded import anchor_of

    class Ctx:  # the three things generate reads from a GenerationContext
        def item_rows(self, ids):
            return np.arange(len(ids))

        def user_vectors(self, users):
            return np.zeros((len(users), DIM), np.float32)

        def user_histories(self, users, liked=False):
            assert liked  # a blurb names only what the user liked
            return [["m1", "h1"] if u == "U1" else [] for u in users]

    ex = shop.explain(Ctx(), ["m2", "m2"], ["U1", None])
    assert [e.anchor for e in ex] == ["m1", None] and [e.user_id for e in ex] == ["U1", ""]
    assert ex[0].shared == {"category": ["mug"], "pattern": ["checkered"]} and ex[1].shared == {}
    assert ex[0].text == shop.generate(Ctx(), ["m2"], ["U1"]).texts[0]
    assert anchor_of(ex[0].sources) == "m1" and anchor_of(ex[1].sources) is None
    assert anchor_of(["history:a:b:colour"]) == "a:b" and anchor_of(["history:a:b"]) == "a"


def test_verb_follows_the_interactions_event():
    for events, verb in ((["rating", "rating"], "rated"), (["purchase", "view"], "picked"), (["purchase"], "bought")):
        g = GroundedBlurbGenerator().fit_frames(SHOP, SHOP_REVIEWS, encode=encode,
                                                interactions=pd.DataFrame({"event": events}))
        assert g.generate_vectors(["m2"], ZERO, histories=[["m1"]]).texts[0].startswith(f"You {verb} the teal")


def test_rated_history_reads_liked_only_when_the_like_threshold_says_so():
    """MovieLens blurbs read "You rated Toy Story (1995); ..." although the blurb names only films
    the user rated 4 or 5: "liked" says why the film is named, and is true at that threshold."""
    from types import SimpleNamespace

    from recgen.profiles import ProfileConfig

    ratings = pd.DataFrame({"user_id": ["U1", "U1"], "item_id": ["m1", "h1"], "event": ["rating", "rating"],
                            "rating": [5, 4]})
    for threshold, verb in ((0.75, "liked"), (0.9, "liked"), (0.5, "rated")):
        ctx = SimpleNamespace(require_catalog=lambda what: SimpleNamespace(items=SHOP, reviews=SHOP_REVIEWS,
                                                                          interactions=ratings),
                              encode_text=encode,
                              model=SimpleNamespace(profiles=SimpleNamespace(config=ProfileConfig(
                                  like_threshold=threshold))))
        g = GroundedBlurbGenerator().fit(ctx)
        assert g.generate_vectors(["m2"], ZERO, histories=[["m1"]]).texts[0].startswith(f"You {verb} the teal")
    purchases = ratings.assign(event="purchase")  # only ratings change their verb
    ctx.require_catalog = lambda what: SimpleNamespace(items=SHOP, reviews=SHOP_REVIEWS, interactions=purchases)
    assert GroundedBlurbGenerator().fit(ctx).verb_ == "bought"


def test_template_words_state_no_fact():
    from recgen.datasets.movielens import MOVIELENS_GENRES
    from recgen.datasets.shop import CATEGORIES, COLOURS, MATERIALS, PATTERNS, PRODUCT_NAMES
    from recgen.generators.grounded import TEMPLATE_WORDS

    facts = {w for v in (*CATEGORIES, *COLOURS, *MATERIALS, *PATTERNS, *PRODUCT_NAMES, *MOVIELENS_GENRES.values())
             for w in re.findall(r"[a-z]+", v.lower())}
    assert not TEMPLATE_WORDS & facts


def test_save_load_round_trip_with_history_links(shop, tmp_path):
    shop.save(tmp_path / "g")
    loaded = GroundedBlurbGenerator.load(tmp_path / "g")
    items, hists = ["m2", "v1", "m1"], [["m1"], ["m1"], []]
    u = encode(["gift", "flowers", "tea"])
    a, b = loaded.generate_vectors(items, u, histories=hists), shop.generate_vectors(items, u, histories=hists)
    assert (a.texts, a.sources, a.anchors) == (b.texts, b.sources, b.anchors) and a.anchors[0] == "m1"
    # a generator saved before history links (no facts in its file) loads and never names one
    payload = json.loads((tmp_path / "g" / "sentences.json").read_text())
    old = tmp_path / "old"
    old.mkdir()
    for k in ("titles", "attributes", "verb"):
        payload.pop(k)
    (old / "sentences.json").write_text(json.dumps(payload))
    (old / "vectors.npy").write_bytes((tmp_path / "g" / "vectors.npy").read_bytes())
    (old / "manifest.json").write_text((tmp_path / "g" / "manifest.json").read_text())
    legacy = GroundedBlurbGenerator.load(old, verify=False)
    assert legacy.generate_vectors(["m2"], ZERO, histories=[["m1"]]).anchors == [None]


def test_faithfulness_connectives_and_text_personalization():
    from recgen.evaluation.generation import faithfulness, text_personalization

    src = ["teal checkered mug navy"]
    f = faithfulness(["You picked the teal mug; this one is navy."], src, connectives={"picked"})
    assert f["mean"] == 1.0 and f["connective_words"] == 1
    f = faithfulness(["You picked the purple mug."], src, connectives={"picked"})
    assert f["unsupported"] == [["purple"]]  # a connective never hides an invented fact
    assert faithfulness(["You picked the teal mug."], src)["unsupported"] == [["picked"]]
    with pytest.raises(TypeError, match="connectives"):
        faithfulness(["x"], src, connectives="picked")
    own, other = ["red mug tea", "blue lamp desk"], ["blue lamp desk", "red mug tea"]
    p = text_personalization(["red mug", "blue lamp"], own, other)
    assert p["win_rate"] == 1.0 and p["chance"] == 0.5
    same = text_personalization(["red mug", "blue lamp"], own, other, other_blurbs=["red mug", "blue lamp"])
    assert same["win_rate"] == 0.5 and same["ties"] == 1.0  # equal blurbs: the swap test cannot tell


def test_title_phrase_and_sentences_that_lean_on_the_one_before():
    from recgen.generators.grounded import _title_phrase

    assert _title_phrase("Teal checkered mug") == "the teal checkered mug"
    assert _title_phrase("Red striped t-shirt") == "the red striped t-shirt"
    for proper in ("Contact (1997)", "Toy Story (1995)", "Jumanji", "Men in Black (1997)"):
        assert _title_phrase(proper) == proper
    # a library-style trailing article is read as a person says the title (the same words)
    assert _title_phrase("Silence of the Lambs, The (1991)") == "The Silence of the Lambs (1991)"
    assert _title_phrase("Usual Suspects, The") == "The Usual Suspects"
    assert _title_phrase("City of Lost Children, The (Cite des enfants perdus, La) (1995)") == \
        "City of Lost Children, The (Cite des enfants perdus, La) (1995)"  # ambiguous: left alone
    items = pd.DataFrame({"item_id": ["F"], "title": ["Film (1990)"],
                          "description": ["A quiet coastal town in winter. He is turning fifteen and restless."]})
    g = GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=1)).fit_frames(items, None, encode=encode)
    out = g.generate_vectors(["F"], encode(["turning fifteen restless"]))
    assert out.texts == ["A quiet coastal town in winter."]  # "He ..." never stands alone
    g2 = GroundedBlurbGenerator(GroundedBlurbConfig(max_sentences=2)).fit_frames(items, None, encode=encode)
    assert g2.generate_vectors(["F"], encode(["turning fifteen restless"])).texts == [items.at[0, "description"]]


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


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the PETER tests below: tiny models, one thread


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


def test_rouge_consensus_quotes_the_sentence_that_agrees_most_with_the_other_reviews():
    """Issue 13 (MBR): the neutral blurb's review sentence is the one with the highest mean
    ROUGE-L F against the item's *other* reviews. Three reviews say it fits; review 12 says
    one other thing four times. Word centrality counts sentences, so it quotes review 12;
    the consensus over reviews, each sentence's own review left out, does not."""
    from rouge_score import rouge_scorer

    from recgen.generators.grounded import _lcs, _masks

    items = pd.DataFrame({"item_id": ["D"], "title": ["Linen dress"]})
    reviews = pd.DataFrame({"item_id": ["D"] * 4, "rating": [5.0] * 4, "text": [
        "The fabric is soft and it fits true to size.",
        "Soft fabric and it fits true to size, I love it.",
        ("Shipping was quick and the box was pretty. The box was pretty and shipping was quick. "
         "Quick shipping and the box was pretty. The pretty box came with quick shipping."),
        "It fits true to size and the fabric is so soft."]}, index=[10, 11, 12, 13])
    cfg = {"max_sentences": 1, "min_praise": None}
    mbr = GroundedBlurbGenerator(GroundedBlurbConfig(neutral_consensus="rouge", **cfg)).fit_frames(
        items, reviews, encode=encode)
    words = GroundedBlurbGenerator(GroundedBlurbConfig(**cfg)).fit_frames(items, reviews, encode=encode)
    # the expected choice, by rouge-score itself
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    risk = {}
    for s, src in zip(mbr.sentences_, mbr.sources_):
        others = [t for label, t in reviews["text"].items() if f"review:{label}" != src]
        risk[s] = np.mean([scorer.score(t, s)["rougeL"].fmeasure for t in others])
    np.testing.assert_allclose(mbr.typicality_, [risk[s] for s in mbr.sentences_], atol=1e-9)
    best = max(risk, key=risk.get)
    out = mbr.generate_vectors(["D"], ZERO)
    assert out.texts == [f'A reviewer writes: "{best}"'] and out.sources[0][0] in ("review:10", "review:11", "review:13")
    assert words.generate_vectors(["D"], ZERO).sources[0] == ["review:12"]  # what centrality picked
    with pytest.raises(ValueError, match="neutral_consensus"):
        GroundedBlurbConfig(neutral_consensus="bleu")
    # the bit-parallel LCS against a plain dynamic programme
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = list(rng.choice(list("abcd"), rng.integers(1, 12))), list(rng.choice(list("abcde"), rng.integers(0, 15)))
        table = np.zeros((len(a) + 1, len(b) + 1), int)
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1, j + 1] = table[i, j] + 1 if x == y else max(table[i, j + 1], table[i + 1, j])
        assert _lcs(_masks(a), len(a), b) == table[-1, -1]


def test_tail_clause_reads_on_its_own():
    from recgen.generators.grounded import _tail_clause

    assert _tail_clause("Made from glass, it is just right for morning coffee.", 3) == \
        "it is just right for morning coffee."
    assert _tail_clause("The ceramic build is sturdy, and it holds fresh flowers.", 3) == "it holds fresh flowers."
    assert _tail_clause("Runs small; I sized up and it fits.", 3) == "I sized up and it fits."
    assert _tail_clause("Lovely gift for a friend, she was delighted.", 3) is None  # "she" leans on the opening
    assert _tail_clause("Made from glass, it is nice.", 3) is None  # too short to stand for the sentence
    assert _tail_clause("A mug without any break in it.", 3) is None


KIT = pd.DataFrame({
    "item_id": ["a", "b", "c", "d", "m", "v", "t", "u"],
    "title": ["Navy glass mug", "Navy glass vase", "Red metal lamp", "Red metal hat",
              "Teal ceramic mug", "Teal ceramic vase", "Pink wool t-shirt", "Pink wool hat"],
    "description": ["Meet the Aurora: a navy mug. Made from glass, it is just right for morning coffee.",
                    "A navy vase from the Willow line.", "A red lamp.", "A red hat.",
                    "It is made of ceramic and just right for morning coffee.", "A teal vase.",
                    "It is made of wool and comfortable for everyday wear.", "A pink hat."],
    "attributes": [{"category": k, "colour": c, "material": m} for k, c, m in (
        ("mug", "navy", "glass"), ("vase", "navy", "glass"), ("lamp", "red", "metal"), ("hat", "red", "metal"),
        ("mug", "teal", "ceramic"), ("vase", "teal", "ceramic"), ("t-shirt", "pink", "wool"),
        ("hat", "pink", "wool"))],
})
KIT_REVIEWS = pd.DataFrame({"item_id": ["a", "b", "c", "m", "v", "t"], "rating": [5.0] * 6,
                            "text": ["Really happy with this mug.", "Really happy with this vase.",
                                     "Really happy with this lamp.", "Really happy with this mug.",
                                     "Really happy with this vase.", "Really happy with this t-shirt."]})


def test_link_leaves_a_fact_to_the_items_own_sentence_rather_than_end_on_boilerplate():
    """Every sentence of the mug restates its ceramic, which a link stating "the same teal colour and
    ceramic material" already said: the blurb ended on "Really happy with this mug." (18% of the
    sample shop's personal blurbs ended so, and 8% were the link alone). The link now leaves the
    ceramic to the description, which says more than the fact."""
    g = GroundedBlurbGenerator().fit_frames(KIT, KIT_REVIEWS, encode=encode)
    out = g.generate_vectors(["m"], ZERO, histories=[["v"]])
    assert out.texts[0] == ("You picked the teal ceramic vase; this mug has the same teal colour. "
                            "It is made of ceramic and just right for morning coffee."), out.texts[0]
    assert out.sources[0][-1] == "description" and out.anchors == ["v"]
    # a multi-word noun is masked as one: "Really happy with this t-shirt." is the same boilerplate
    out = g.generate_vectors(["t"], encode(["really happy with this t-shirt"]), histories=[["u"]])
    assert "Really happy" not in out.texts[0] and out.texts[0].endswith("comfortable for everyday wear."), \
        out.texts[0]


def test_personal_blurb_adds_what_the_link_left_unsaid_not_boilerplate():
    from recgen.evaluation.content import blurb_evidence
    from recgen.evaluation.generation import faithfulness
    from recgen.generators.grounded import TEMPLATE_WORDS

    g = GroundedBlurbGenerator().fit_frames(KIT, KIT_REVIEWS, encode=encode)
    # the taste points at the boilerplate review, yet the item's own statement is quoted
    for taste in (ZERO, encode(["really happy with this mug"])):
        out = g.generate_vectors(["a"], taste, histories=[["b"]])
        assert out.texts[0] == ("You picked the navy glass vase; this mug has the same navy colour and glass "
                                "material. It is just right for morning coffee."), out.texts[0]
    # ... whose opening restated the glass: only the clause that reads on its own is quoted, from its source
    assert out.sources[0][-1] == "description"
    cited = [blurb_evidence(KIT, KIT_REVIEWS, i, s) for i, s in zip(out.item_ids, out.sources)]
    assert faithfulness(out.texts, cited, connectives=TEMPLATE_WORDS)["mean"] == 1.0
    # with nothing else left, the boilerplate still speaks; a neutral blurb is chosen as before
    out = g.generate_vectors(["c"], ZERO, histories=[["d"]])
    assert out.texts[0].endswith('A reviewer writes: "Really happy with this lamp."'), out.texts[0]
    assert g.generate_vectors(["a"], ZERO).texts[0] == \
        'Meet the Aurora: a navy mug. A reviewer writes: "Really happy with this mug."'
