"""CVAEGenerator: tiny configs, fixed seeds (diffusers-style generator tests)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recgen.errors import ArtifactError, ModelFitError, NotFittedError
from recgen.generators.cvae import CVAEConfig, CVAEGenerator

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)


def colour_data(n=128, size=16, seed=0):
    """Solid-colour images; the item condition is the colour's one-hot, the user condition
    leans towards the same colour (so a taste carries information about the picture)."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 4, n)
    images = np.broadcast_to(COLOURS[lab][:, None, None, :], (n, size, size, 3)).copy()
    item = np.eye(4, dtype=np.float32)[lab]
    user = np.eye(4, dtype=np.float32)[lab] * rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    return images, item, user


def tiny(**kw):
    return CVAEConfig(**{"image_size": 16, "epochs": 2, "base_channels": 8, "latent_dim": 4, "batch_size": 32, **kw})


def test_shapes_dtype_and_seed_determinism():
    x, ic, uc = colour_data()
    g = CVAEGenerator(tiny()).fit(x, ic, uc)
    a = g.generate(ic[:3], uc[:3], seed=0)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, g.generate(ic[:3], uc[:3], seed=0))
    assert not np.array_equal(a, g.generate(ic[:3], uc[:3], seed=1))
    assert g.reconstruct(x[:2], ic[:2], uc[:2]).shape == (2, 16, 16, 3)


def test_fit_is_deterministic():
    x, ic, uc = colour_data()
    a = CVAEGenerator(tiny()).fit(x, ic, uc).generate(ic[:4], uc[:4], seed=3)
    b = CVAEGenerator(tiny()).fit(x, ic, uc).generate(ic[:4], uc[:4], seed=3)
    assert np.array_equal(a, b)


def test_save_load_round_trip_and_tamper(tmp_path):
    x, ic, uc = colour_data()
    g = CVAEGenerator(tiny(adversarial_weight=0.1)).fit(x, ic, uc)
    g.save(tmp_path / "g")
    h = CVAEGenerator.load(tmp_path / "g")
    assert np.array_equal(g.generate(ic[:4], uc[:4], seed=2), h.generate(ic[:4], uc[:4], seed=2))
    assert h.history == g.history and "d_loss" in h.history
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["kind"] == "cvae-generator"
    blob = bytearray((tmp_path / "g" / "weights.safetensors").read_bytes())
    blob[-10] ^= 0xFF
    (tmp_path / "g" / "weights.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="checksum"):
        CVAEGenerator.load(tmp_path / "g")


@pytest.mark.parametrize("adv", [0.0, 0.1])
def test_resume_equals_uninterrupted(tmp_path, adv):
    x, ic, uc = colour_data()
    full = CVAEGenerator(tiny(epochs=4, adversarial_weight=adv)).fit(x, ic, uc)
    CVAEGenerator(tiny(epochs=4, adversarial_weight=adv)).fit(x, ic, uc, epochs=2, checkpoint_dir=tmp_path / "ck")
    resumed = CVAEGenerator(tiny(epochs=4, adversarial_weight=adv)).fit(x, ic, uc, checkpoint_dir=tmp_path / "ck",
                                                                        resume=True)
    assert resumed.epochs_done == 4 and len(resumed.history["loss"]) == 4
    assert np.array_equal(full.generate(ic[:6], uc[:6], seed=1), resumed.generate(ic[:6], uc[:6], seed=1))
    assert np.allclose(full.history["loss"], resumed.history["loss"])


def test_nan_guard():
    x, ic, uc = colour_data()
    with pytest.raises(ModelFitError, match="lower the learning rate"):
        CVAEGenerator(tiny(lr=1e12, epochs=3)).fit(x, ic, uc)


def test_input_validation():
    x, ic, uc = colour_data()
    with pytest.raises(ValueError, match="image_size"):
        CVAEConfig(image_size=48)
    with pytest.raises(ValueError, match="same number of rows"):
        CVAEGenerator(tiny()).fit(x, ic[:10], uc)
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
        CVAEGenerator(tiny()).fit(x[..., 0], ic, uc)
    with pytest.raises(ValueError, match="NaN"):
        CVAEGenerator(tiny()).fit(x, ic * np.nan, uc)
    g = CVAEGenerator(tiny()).fit(x, ic, uc)
    with pytest.raises(ValueError, match="fitted with"):
        g.generate(np.zeros((1, 5), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(NotFittedError):
        CVAEGenerator(tiny()).generate(ic[:1], uc[:1])


def test_learns_conditioning_and_user_taste_moves_output():
    x, ic, uc = colour_data(n=256)
    g = CVAEGenerator(tiny(epochs=20)).fit(x, ic, uc)
    means = g.generate(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), seed=0).reshape(4, -1, 3).mean(1)
    # each condition's preview is closest to its own colour
    dist = ((means[:, None, :] - COLOURS[None].astype(float)) ** 2).sum(-1)
    assert list(dist.argmin(1)) == [0, 1, 2, 3]
    # with the item condition dropped, the user's taste alone decides the colour
    no_item = np.zeros((4, 4), np.float32)
    by_taste = g.generate(no_item, np.eye(4, dtype=np.float32), seed=0).reshape(4, -1, 3).mean(1)
    neutral = g.generate(no_item, np.zeros((4, 4), np.float32), seed=0).reshape(4, -1, 3).mean(1)
    closer = [np.linalg.norm(by_taste[k] - COLOURS[k]) < np.linalg.norm(neutral[k] - COLOURS[k]) for k in range(4)]
    assert sum(closer) >= 3
