"""CVAEGenerator: tiny configs, fixed seeds (diffusers-style generator tests)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recgen.errors import ArtifactError, ModelFitError, NotFittedError  # noqa: E402
from recgen.generators import make_generator  # noqa: E402
from recgen.generators.cvae import CVAEConfig, CVAEGenerator  # noqa: E402

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def colour_data(n=128, size=16, seed=0):
    """Solid-colour images whose colour is known from the conditions.

    The item condition is the one-hot of the item's colour. Half the rows have a neutral
    user (zeros) and show the item's colour; the other half have a user with a taste for
    colour ``j`` (one-hot) and show the item's colour blended half-way towards colour ``j``,
    so, for a fixed item, the user vector carries information about the picture.
    """
    rng = np.random.default_rng(seed)
    item = rng.integers(0, 4, n)
    taste = rng.integers(0, 4, n)
    has_taste = np.arange(n) % 2 == 1
    colour = COLOURS[item].astype(np.float32)
    colour[has_taste] = 0.5 * colour[has_taste] + 0.5 * COLOURS[taste[has_taste]]
    images = np.broadcast_to(colour.round().astype(np.uint8)[:, None, None, :], (n, size, size, 3)).copy()
    ic = np.eye(4, dtype=np.float32)[item]
    uc = np.eye(4, dtype=np.float32)[taste] * has_taste[:, None].astype(np.float32)
    return images, ic, uc


def tiny(**kw):
    return CVAEConfig(**{"image_size": 16, "epochs": 2, "base_channels": 8, "latent_dim": 4, "cond_hidden": 16,
                         "batch_size": 32, **kw})


def weights(gen):
    return {f"{name}.{k}": v.detach().clone() for name, net in gen._nets.items() for k, v in net.state_dict().items()}


def assert_same_weights(a, b, atol=1e-6):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=atol, rtol=1e-5), k


@pytest.fixture(scope="module")
def data():
    return colour_data()


@pytest.fixture(scope="module")
def fitted(data):
    x, ic, uc = data
    return CVAEGenerator(tiny()).fit_arrays(x, ic, uc)


def test_shapes_dtype_and_seeds(fitted, data):
    x, ic, uc = data
    a = fitted.generate_arrays(ic[:3], uc[:3], seed=0)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, fitted.generate_arrays(ic[:3], uc[:3], seed=0))
    assert not np.array_equal(a, fitted.generate_arrays(ic[:3], uc[:3], seed=1))
    # batch_size does not change what a seed draws; temperature 0 ignores the seed
    assert np.array_equal(a, fitted.generate_arrays(ic[:3], uc[:3], seed=0, batch_size=2))
    assert np.array_equal(fitted.generate_arrays(ic[:3], uc[:3], seed=0, temperature=0),
                          fitted.generate_arrays(ic[:3], uc[:3], seed=5, temperature=0))
    assert fitted.generate_arrays(ic[:0], uc[:0]).shape == (0, 16, 16, 3)
    r = fitted.reconstruct(x[:2], ic[:2], uc[:2])
    assert r.shape == (2, 16, 16, 3) and r.dtype == np.uint8
    h = fitted.history
    assert set(h) == {"loss", "recon", "kl"} and all(len(v) == 2 and np.isfinite(v).all() for v in h.values())
    assert fitted.config.cond_dim == 8 and (fitted.item_dim, fitted.user_dim) == (4, 4)


@pytest.mark.parametrize("size", [32, 128])
def test_stage_count_follows_image_size(size):
    x, ic, uc = colour_data(n=4, size=8)  # resized (PIL) to the configured size
    cfg = CVAEConfig(image_size=size, epochs=1, base_channels=4, latent_dim=2, cond_hidden=8, batch_size=4)
    assert cfg.stages == int(np.log2(size)) - 2
    g = CVAEGenerator(cfg).fit_arrays(x, ic, uc)
    assert g.generate_arrays(ic[:1], uc[:1]).shape == (1, size, size, 3)
    assert g.reconstruct(x[:1].astype(np.float32) / 255, ic[:1], uc[:1]).shape == (1, size, size, 3)


def test_fit_is_deterministic(data, fitted):
    x, ic, uc = data
    again = CVAEGenerator(tiny()).fit_arrays(x, ic, uc)
    assert_same_weights(fitted, again, atol=0)
    assert np.array_equal(fitted.generate_arrays(ic[:4], uc[:4], seed=3), again.generate_arrays(ic[:4], uc[:4], seed=3))
    other = CVAEGenerator(tiny(seed=1)).fit_arrays(x, ic, uc)
    assert not np.array_equal(fitted.generate_arrays(ic[:4], uc[:4], seed=3), other.generate_arrays(ic[:4], uc[:4], seed=3))


def test_save_load_round_trip_and_tamper(tmp_path, data):
    x, ic, uc = data
    g = CVAEGenerator(tiny(adversarial_weight=0.1)).fit_arrays(x, ic, uc)
    before = g.generate_arrays(ic[:4], uc[:4], seed=2)
    g.save(tmp_path / "g")
    assert np.array_equal(before, g.generate_arrays(ic[:4], uc[:4], seed=2))  # saving does not change the object
    h = CVAEGenerator.load(tmp_path / "g", device="cpu")
    assert np.array_equal(before, h.generate_arrays(ic[:4], uc[:4], seed=2))
    assert h.history == g.history and "d_loss" in h.history and h.epochs_done == 2
    assert_same_weights(g, h, atol=0)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["kind"] == "cvae-generator"
    assert set(manifest["files"]) == {"weights.safetensors", "optimizer.safetensors"}
    assert manifest["config"]["torch_state"]["modules"] == ["cond", "enc", "dec", "disc"]
    assert not list((tmp_path / "g").glob("*.pkl")) and not list((tmp_path / "g").glob("*.pt"))
    blob = bytearray((tmp_path / "g" / "weights.safetensors").read_bytes())
    blob[-10] ^= 0xFF
    (tmp_path / "g" / "weights.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="checksum"):
        CVAEGenerator.load(tmp_path / "g")
    with pytest.raises(ArtifactError, match="missing"):
        CVAEGenerator.load(tmp_path / "nothing")


@pytest.mark.parametrize("adv", [0.0, 0.1])
def test_resume_equals_uninterrupted(tmp_path, data, adv):
    x, ic, uc = data
    x, ic, uc = x[:64], ic[:64], uc[:64]
    full = CVAEGenerator(tiny(adversarial_weight=adv)).fit_arrays(x, ic, uc, epochs=4)
    CVAEGenerator(tiny(adversarial_weight=adv)).fit_arrays(x, ic, uc, epochs=2, checkpoint_dir=tmp_path / "ck")
    assert CVAEGenerator.load(tmp_path / "ck").epochs_done == 2
    resumed = CVAEGenerator(tiny(adversarial_weight=adv)).fit_arrays(x, ic, uc, epochs=4, checkpoint_dir=tmp_path / "ck",
                                                              resume=True)
    assert resumed.epochs_done == 4 and len(resumed.history["loss"]) == 4
    assert_same_weights(full, resumed)
    for k in full.history:
        assert np.allclose(full.history[k], resumed.history[k], rtol=1e-5), k
    assert np.array_equal(full.generate_arrays(ic[:6], uc[:6], seed=1), resumed.generate_arrays(ic[:6], uc[:6], seed=1))
    assert CVAEGenerator.load(tmp_path / "ck").epochs_done == 4


def test_resume_checks(tmp_path, data):
    x, ic, uc = data
    x, ic, uc = x[:8], ic[:8], uc[:8]
    with pytest.raises(ValueError, match="checkpoint_dir"):
        CVAEGenerator(tiny()).fit_arrays(x, ic, uc, resume=True)
    # no checkpoint yet: trains from scratch, exactly like a fresh fit
    a = CVAEGenerator(tiny(epochs=1)).fit_arrays(x, ic, uc, checkpoint_dir=tmp_path / "ck", resume=True)
    assert_same_weights(a, CVAEGenerator(tiny(epochs=1)).fit_arrays(x, ic, uc), atol=0)
    with pytest.raises(ValueError, match="user_cond has 5 columns; the checkpoint .* trained with 4"):
        CVAEGenerator(tiny()).fit_arrays(x, ic, np.zeros((8, 5), np.float32), checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(ValueError, match=r"latent_dim=5 \(checkpoint: 4\)"):
        CVAEGenerator(tiny(latent_dim=5)).fit_arrays(x, ic, uc, checkpoint_dir=tmp_path / "ck", resume=True)


def test_nan_guard(monkeypatch, data, tmp_path):
    x, ic, uc = data
    import torch.nn.functional as F

    real, calls = F.mse_loss, {"n": 0}

    def nan_after_4(*args, **kwargs):  # 4 steps per epoch: epoch 1 trains, epoch 2 step 1 diverges
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out * float("nan") if calls["n"] > 4 else out

    monkeypatch.setattr(F, "mse_loss", nan_after_4)
    with pytest.raises(ModelFitError, match=r"epoch 2/2, step 1; lower the learning rate \(lr="):
        CVAEGenerator(tiny()).fit_arrays(x, ic, uc, checkpoint_dir=tmp_path / "ck")
    # the last good epoch's checkpoint is intact
    assert CVAEGenerator.load(tmp_path / "ck").epochs_done == 1


def test_nan_guard_huge_learning_rate(data):
    x, ic, uc = data
    with pytest.raises(ModelFitError, match="lower the learning rate"):
        CVAEGenerator(tiny(lr=1e12, epochs=3)).fit_arrays(x[:64], ic[:64], uc[:64])


@pytest.mark.parametrize("field,value", [("image_size", 48), ("image_size", 8), ("batch_size", 1), ("lr", 0.0),
                                         ("beta", -1.0), ("warmup_epochs", -1), ("epochs", 1.5),
                                         ("adversarial_weight", float("nan")), ("recon_loss", "l1"),
                                         ("cond_dim", 0), ("latent_dim", 0)])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        CVAEConfig(**{field: value})


def test_input_validation(fitted, data):
    x, ic, uc = data
    with pytest.raises(ValueError, match="item_cond has 10 rows but user_cond has 128"):
        CVAEGenerator(tiny()).fit_arrays(x, ic[:10], uc)
    with pytest.raises(ValueError, match="images has 10 rows"):
        CVAEGenerator(tiny()).fit_arrays(x[:10], ic, uc)
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
        CVAEGenerator(tiny()).fit_arrays(x[..., 0], ic, uc)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        CVAEGenerator(tiny()).fit_arrays(x.astype(np.float32), ic, uc)
    with pytest.raises(ValueError, match="item_cond contains NaN"):
        CVAEGenerator(tiny()).fit_arrays(x, ic * np.nan, uc)
    with pytest.raises(ValueError, match="user_cond must be 2-D"):
        CVAEGenerator(tiny()).fit_arrays(x, ic, uc[:, 0])
    with pytest.raises(ValueError, match="at least 2"):
        CVAEGenerator(tiny()).fit_arrays(x[:1], ic[:1], uc[:1])
    with pytest.raises(ValueError, match="config.cond_dim is 9"):
        CVAEGenerator(tiny(cond_dim=9)).fit_arrays(x, ic, uc)
    with pytest.raises(ValueError, match="item_cond has 5 columns; this generator was fitted with 4"):
        fitted.generate_arrays(np.zeros((1, 5), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="temperature"):
        fitted.generate_arrays(ic[:1], uc[:1], temperature=-1)
    for call in (lambda g: g.generate_arrays(ic[:1], uc[:1]), lambda g: g.reconstruct(x[:1], ic[:1], uc[:1]),
                 lambda g: g.save("unused")):
        with pytest.raises(NotFittedError):
            call(CVAEGenerator(tiny()))


def test_adversarial_path_and_registry(data):
    x, ic, uc = data
    g = make_generator("cgan", image_size=16, epochs=2, base_channels=8, latent_dim=4, cond_hidden=16, batch_size=32)
    assert isinstance(g, CVAEGenerator) and g.adversarial
    g.fit_arrays(x, ic, uc, progress=True)
    for k in ("loss", "recon", "kl", "d_loss", "g_adv"):
        assert len(g.history[k]) == 2 and np.isfinite(g.history[k]).all(), k
    assert g.generate_arrays(ic[:2], uc[:2]).shape == (2, 16, 16, 3)
    assert not make_generator("cvae").adversarial


def test_learns_conditioning_and_user_taste_moves_output():
    x, ic, uc = colour_data(n=64)
    g = CVAEGenerator(tiny(epochs=20, batch_size=8, cond_hidden=128)).fit_arrays(x, ic, uc)
    eye, reps = np.eye(4, dtype=np.float32), 8

    def mean_colour(item, user):  # mean over `reps` samples and all pixels, per condition row
        out = g.generate_arrays(np.repeat(item, reps, 0), np.repeat(user, reps, 0), seed=0)
        return out.reshape(len(item), -1, 3).mean(1)

    colours = COLOURS.astype(float)
    neutral = mean_colour(eye, np.zeros((4, 4), np.float32))
    dist = ((neutral[:, None, :] - colours[None]) ** 2).sum(-1)
    assert list(dist.argmin(1)) == [0, 1, 2, 3], neutral.round()
    # personalization: the same item, a user with a taste for colour j -> the preview moves towards j
    moved = []
    for k in range(4):
        for j in range(4):
            if j != k:
                taste = mean_colour(eye[k:k + 1], eye[j:j + 1])[0]
                moved.append(np.linalg.norm(taste - colours[j]) < np.linalg.norm(neutral[k] - colours[j]))
    assert sum(moved) >= 11, moved
