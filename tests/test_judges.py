"""Independent judges of generated images (recgen.evaluation.judges): they must be able to fail."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from recgen.evaluation.judges import (AttributeJudge, independent_features, light_backdrops, presentation_colours,
                                     sharpness, sharpness_ratio, visible_difference, window_boxes, window_features)

ATTRS = ("category", "colour", "pattern")


def _labels(catalog):
    return {k: [a[k] for a in catalog.items["attributes"]] for k in ATTRS}


@pytest.fixture(scope="module")
def judge(sample):
    return AttributeJudge(ATTRS).fit(sample.items["image_path"].tolist(), _labels(sample))


@pytest.fixture(scope="module")
def page_like(sample):
    """A judge also trained on the photos on light backdrops (as the bench's page judge is)."""
    return AttributeJudge(ATTRS, backdrops=2).fit(sample.items["image_path"].tolist(), _labels(sample))


@pytest.fixture(scope="module")
def other_shop(tmp_path_factory):
    """Real photos the judge never saw: the sample shop drawn from another seed."""
    from recgen.datasets import make_sample_catalog

    return make_sample_catalog(tmp_path_factory.mktemp("other"), seed=7, n_items=120)


def test_judge_reads_real_photos_it_never_saw(judge, other_shop):
    assert min(judge.cv_accuracy_.values()) > 0.9, judge.cv_accuracy_
    acc = judge.accuracy(other_shop.items["image_path"].tolist(), _labels(other_shop))
    assert acc["category"] > 0.97 and acc["colour"] > 0.97 and acc["pattern"] > 0.9, acc


def test_light_backdrops_change_the_background_only():
    im = np.full((2, 32, 32, 3), 250, np.uint8)
    im[:, 8:24, 8:24] = (200, 30, 30)  # the product
    im[1, 26:30, 8:24] = 120  # and its shadow
    out = light_backdrops(im, seed=3)
    assert out.shape == im.shape and out.dtype == np.uint8
    product = np.zeros((32, 32), bool)
    product[8:24, 8:24] = True
    np.testing.assert_array_equal(out[:, product], im[:, product])
    np.testing.assert_array_equal(out[1, 26:30, 8:24], im[1, 26:30, 8:24])
    back = ~product
    back[26:30, 8:24] = False
    assert (np.abs(out[:, back].astype(int) - 250).max(-1) > 3).mean() > 0.9  # not the photo's white
    assert out[:, back].min() >= 255 * 0.4 - 1  # light: at most 60 % of the way from white
    np.testing.assert_array_equal(light_backdrops(im, seed=3), out)  # seeded
    assert not np.array_equal(light_backdrops(im, seed=4), out)


def test_a_judge_trained_on_light_backdrops_reads_products_on_them(judge, page_like, other_shop):
    """The strict judge has only seen the photos' own white backgrounds and misreads real products on a
    tinted one; trained with ``backdrops`` copies, it reads them (and still the plain photos)."""
    photos = other_shop.items["image_path"].tolist()
    tinted = light_backdrops(photos, seed=1, strength=(0.1, 0.6))
    labels = _labels(other_shop)
    robust = page_like
    strict_on, robust_on = judge.accuracy(tinted, labels), robust.accuracy(tinted, labels)
    assert min(strict_on.values()) < 0.9, strict_on
    assert np.mean(list(robust_on.values())) > np.mean(list(strict_on.values())) + 0.05, (strict_on, robust_on)
    assert min(robust_on.values()) >= 0.95, robust_on
    assert min(robust.accuracy(photos, labels).values()) >= 0.95


def test_the_page_judge_is_the_strict_judge_with_page_like_copies():
    page = AttributeJudge.for_pages(ATTRS, seed=3)
    assert (page.distractors, page.backdrops, page.seed, page.texture) == (2, 2, 3, True)
    assert AttributeJudge.for_pages(ATTRS, backdrops=0).backdrops == 0  # a setting given wins


def test_texture_features_tell_patterns_apart_on_any_backdrop():
    """Local binary patterns describe the surface, not the background's colour or the product's place."""
    from recgen.evaluation.judges import texture_features

    def product(pattern, backdrop, at):
        im = np.full((64, 64, 3), backdrop, np.uint8)
        y0, x0 = at
        patch = np.full((40, 40, 3), (40, 120, 200), np.uint8)
        if pattern == "striped":
            patch[::8] = patch[1::8] = patch[2::8] = patch[3::8] = 250
        else:  # checkered
            yy, xx = np.mgrid[:40, :40]
            patch[((yy // 4) + (xx // 4)) % 2 == 0] = 250
        im[y0:y0 + 40, x0:x0 + 40] = patch
        return im

    shown = np.stack([product("striped", (255, 255, 255), (4, 4)),
                      product("striped", (235, 200, 215), (20, 16)),  # the same stripes on pink, elsewhere
                      product("checkered", (255, 255, 255), (4, 4))])
    f = texture_features(shown)
    assert f.shape == (3, 512) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.05
    # the codes, pixel by pixel: neighbour k at (dy, dx) * r sets bit k when at least 0.02 brighter
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    gray = (im[0].astype(np.float32) / 255.0).mean(-1)
    ring = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
    blocks = []
    for r in (1, 2):
        hist = np.zeros(256)
        for y in range(r, 16 - r):
            for x in range(r, 16 - r):
                brighter = [gray[y + dy * r, x + dx * r] >= gray[y, x] + 0.02 for dy, dx in ring]
                hist[sum(1 << k for k, b in enumerate(brighter) if b)] += 1
        blocks.append(np.sqrt(hist) / np.linalg.norm(np.sqrt(hist)))
    np.testing.assert_allclose(texture_features(im, size=16)[0], np.concatenate(blocks) / np.sqrt(2), atol=1e-6)
    with pytest.raises(ValueError, match="radii must be positive"):
        texture_features(np.zeros((1, 8, 8, 3), np.uint8), size=8, radii=(4,))


def test_a_judge_with_texture_reads_the_pattern_on_light_backdrops(sample, page_like, other_shop):
    """Without local binary patterns the judge reads stripes on a tinted backdrop as some other pattern far
    more often (the colour layout and HOG blocks change with the backdrop); with them it reads the pattern."""
    photos = other_shop.items["image_path"].tolist()
    tinted = light_backdrops(photos, seed=1, strength=(0.1, 0.6))
    labels = _labels(other_shop)
    old = AttributeJudge(ATTRS, backdrops=2, texture=False).fit(sample.items["image_path"].tolist(), _labels(sample))
    new = page_like
    assert old.accuracy(tinted, labels)["pattern"] < 0.92
    assert new.accuracy(tinted, labels)["pattern"] >= 0.98
    assert new.cv_accuracy_["pattern"] >= 0.98 > old.cv_accuracy_["pattern"]


def test_judge_and_sharpness_see_blur(judge, other_shop):
    """A judge that cannot tell a blurred preview from a photo would bless the blobs issue 13 is about."""
    paths = other_shop.items["image_path"].tolist()
    blurred = np.stack([np.asarray(Image.open(p).convert("RGB").filter(ImageFilter.GaussianBlur(3))) for p in paths])
    acc = judge.accuracy(blurred, _labels(other_shop))
    assert acc["pattern"] < 0.8, acc
    assert sharpness_ratio(blurred, paths) < 0.2
    sharp = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    assert sharpness_ratio(sharp, paths) == pytest.approx(1.0)


def test_features_and_differences(other_shop):
    paths = other_shop.items["image_path"].tolist()[:20]
    f = independent_features(paths)
    assert f.shape == (20, 448) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    sims = f @ f.T
    assert (np.argmax(sims, axis=1) == np.arange(20)).all()   # each photo is nearest to itself
    imgs = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    assert visible_difference(imgs, imgs).max() == 0.0
    assert visible_difference(imgs, imgs[::-1]).mean() > 0.03
    assert (sharpness(imgs) > 0).all()
    with pytest.raises(ValueError, match="same number"):
        visible_difference(imgs, imgs[:3])


def _posters(n, seed=0):
    """Full-bleed portrait pictures (2:3) of random colour blocks: distinct items, like film posters."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (3, 2, 3)).astype(np.uint8)).resize((80, 120), Image.NEAREST)
            for _ in range(n)]


def test_localized_identifiability_finds_an_item_shown_small_and_beside_another():
    """A poster letterboxed at 60 % in a corner with another poster beside it: the whole-picture
    features lose it, the best window finds it (and neither finds an item that is not shown)."""
    from recgen.evaluation.generation import identifiability

    posters = _posters(30)
    real = np.stack([np.asarray(p.resize((64, 64), Image.BICUBIC)) for p in posters])
    shown = []
    for j, p in enumerate(posters):
        canvas = Image.new("RGB", (128, 128), (236, 226, 214))
        canvas.paste(p.resize((51, 77)), (8, 6))
        canvas.paste(posters[(j + 1) % 30].resize((24, 36)), (98, 88))
        shown.append(np.asarray(canvas))
    shown = np.stack(shown)
    real_f = independent_features(real)
    plain = identifiability(independent_features(shown), real_f, np.arange(30), n_candidates=30)
    windows = window_features(shown)
    assert windows.shape == (30, len(window_boxes()), real_f.shape[1])
    local = identifiability(windows, real_f, np.arange(30), n_candidates=30)
    assert local["top1"] >= 0.95 and local["top1"] > plain["top1"] + 0.2, (plain, local)
    wrong = identifiability(windows, real_f, (np.arange(30) + 15) % 30, n_candidates=30)  # items not shown
    assert wrong["top1"] < 0.2
    with pytest.raises(ValueError, match="dim"):
        identifiability(windows[:, :, :10], real_f, np.arange(30))


def test_presentation_colours_leave_out_a_label_both_previews_share():
    """An opaque label drawn on both previews is not what personalization changed: comparing the
    previews after resampling them let its hue bleed into the changed pixels of both."""
    from recgen.evaluation.judges import _hue_histogram

    def preview(backdrop):
        im = np.empty((128, 128, 3), np.uint8)
        im[:] = backdrop
        im[40:88, 40:88] = (40, 40, 40)  # the product, the same in both
        im[-12:, :50] = (230, 150, 20)   # an amber "generated" label, the same in both
        return im

    personal = np.stack([preview((200, 215, 250))] * 4)  # a blue-tinted backdrop
    neutral = np.stack([preview((255, 255, 255))] * 4)
    history = [np.stack([np.full((64, 64, 3), 250, np.uint8)]) for _ in range(4)]
    for h in history:
        h[0, 16:48, 16:48] = (30, 60, 200)
    ph, qh, _ = presentation_colours(personal, neutral, history)
    amber = np.argmax(_hue_histogram(np.array([[230, 150, 20]], np.float32) / 255))
    blue = np.argmax(_hue_histogram(np.array([[200, 215, 250]], np.float32) / 255))
    assert (ph.argmax(1) == blue).all() and (ph[:, amber] < 1e-3).all()
    assert (qh[:, amber] < 1e-3).all() and np.ptp(qh, axis=1).max() < 1e-6  # the white backdrop has no hue


def test_window_boxes_cover_the_picture():
    boxes = window_boxes()
    assert tuple(boxes[0]) == (0, 0, 1, 1)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 1 + 1e-9).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert len({tuple(b) for b in boxes}) == len(boxes)


def test_presentation_colours_credit_a_backdrop_in_the_users_hues():
    """Only what personalization changed is compared with the colours of what the user had."""
    from recgen.evaluation.generation import personalization_gain

    def picture(backdrop, product=(40, 40, 40)):
        im = np.empty((64, 64, 3), np.uint8)
        im[:] = backdrop
        im[16:48, 16:48] = product
        return im

    grey, red_tint, blue_tint = (235, 235, 235), (250, 200, 200), (200, 210, 250)
    red_history = [np.stack([picture((250, 250, 250), (200, 30, 40))] * 3) for _ in range(12)]
    neutral = np.stack([picture(grey)] * 12)
    toward = presentation_colours(np.stack([picture(red_tint)] * 12), neutral, red_history)
    away = presentation_colours(np.stack([picture(blue_tint)] * 12), neutral, red_history)
    assert toward[0].shape == (12, 12) and len(toward[2]) == 12 and toward[2][0].shape == (3, 12)
    assert personalization_gain(*toward)["mean_diff"] > 0.3
    assert personalization_gain(*away)["mean_diff"] < 0.05
    same = presentation_colours(neutral, neutral, red_history)  # nothing changed: no shift
    assert personalization_gain(*same)["mean_diff"] == 0.0
    with pytest.raises(ValueError, match="histories"):
        presentation_colours(neutral, neutral, red_history[:3])
