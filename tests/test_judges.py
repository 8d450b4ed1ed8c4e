"""Independent judges of generated images (recgen.evaluation.judges): they must be able to fail."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from recgen.evaluation.judges import AttributeJudge, independent_features, sharpness, sharpness_ratio, visible_difference

ATTRS = ("category", "colour", "pattern")


def _labels(catalog):
    return {k: [a[k] for a in catalog.items["attributes"]] for k in ATTRS}


@pytest.fixture(scope="module")
def judge(sample):
    return AttributeJudge(ATTRS).fit(sample.items["image_path"].tolist(), _labels(sample))


@pytest.fixture(scope="module")
def other_shop(tmp_path_factory):
    """Real photos the judge never saw: the sample shop drawn from another seed."""
    from recgen.datasets import make_sample_catalog

    return make_sample_catalog(tmp_path_factory.mktemp("other"), seed=7, n_items=120)


def test_judge_reads_real_photos_it_never_saw(judge, other_shop):
    assert min(judge.cv_accuracy_.values()) > 0.9, judge.cv_accuracy_
    acc = judge.accuracy(other_shop.items["image_path"].tolist(), _labels(other_shop))
    assert acc["category"] > 0.97 and acc["colour"] > 0.97 and acc["pattern"] > 0.9, acc


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
