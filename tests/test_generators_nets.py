"""The generators' networks, each alone (tiny sizes, forward shapes), and the one torch-state
persistence helper every trainable part uses (``recgen._io.save_torch_state`` / ``load_torch_state``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recgen._io import load_torch_state, save_torch_state, save_weights_directory  # noqa: E402
from recgen.errors import ArtifactError  # noqa: E402
from recgen.generators.nets.cvae import ConditionMLP, ConvEncoder, FiLMDecoder, ProjectionDiscriminator  # noqa: E402
from recgen.generators.nets.peter import PeterTransformer, adaptive_cutoffs  # noqa: E402

CHANNELS = [4, 8]  # two stride-2 stages: 16 px images, 4x4 maps at the bottom


def test_cvae_networks_forward_shapes():
    torch.manual_seed(0)
    n, cond_dim, hidden, latent = 3, 6, 5, 2
    cond = ConditionMLP(cond_dim, hidden)
    enc, dec = ConvEncoder(CHANNELS, latent, hidden), FiLMDecoder(CHANNELS, latent, hidden)
    disc = ProjectionDiscriminator(CHANNELS, cond_dim)
    c = torch.randn(n, cond_dim)
    torch.set_grad_enabled(False)
    try:
        _forward_shapes(cond, enc, dec, disc, c, n, hidden, latent)
    finally:
        torch.set_grad_enabled(True)


def _forward_shapes(cond, enc, dec, disc, c, n, hidden, latent):
    h = cond(c)
    assert h.shape == (n, hidden)
    mu, logvar = enc(torch.rand(n, 3, 16, 16), h)
    assert mu.shape == logvar.shape == (n, latent) and float(logvar.abs().max()) <= 10
    assert dec(mu, h).shape == (n, 3, 16, 16)
    assert disc(torch.rand(n, 3, 16, 16), c).shape == (n,)
    # three stages -> 32 px
    assert FiLMDecoder([4, 8, 8], latent, hidden)(mu, h).shape == (n, 3, 32, 32)


def test_cvae_network_state_keys_are_the_saved_format():
    """The attribute names are the safetensors keys of saved generators: keep them."""
    assert list(ConditionMLP(6, 5).state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert {k.split(".")[0] for k in ConvEncoder(CHANNELS, 2, 5).state_dict()} == {"conv", "head"}
    assert {k.split(".")[0] for k in FiLMDecoder(CHANNELS, 2, 5).state_dict()} == {
        "fc", "ups", "films", "out", "out_shift"}
    assert {k.split(".")[0] for k in ProjectionDiscriminator(CHANNELS, 6).state_dict()} == {"phi", "psi", "embed"}


def test_peter_transformer_shapes_and_heads():
    torch.manual_seed(0)
    b, t = 2, 5
    for vocab, head in ((20, "Linear"), (1200, "AdaptiveLogSoftmaxWithLoss")):
        net = PeterTransformer(vocab, 3, 4, d_model=16, n_heads=2, n_layers=1, max_len=6, dropout=0.0)
        assert type(net.out).__name__ == head and bool(adaptive_cutoffs(vocab)) == (vocab >= 1000)
        u, i = torch.randn(b, 3), torch.randn(b, 4)
        tokens = torch.randint(1, vocab, (b, t))
        assert net.hidden(u, i, tokens).shape == (b, t, 16)
        logp = net.next_log_probs(u, i, tokens)
        assert logp.shape == (b, vocab) and torch.allclose(logp.exp().sum(-1), torch.ones(b), atol=1e-4)
        # a trailing <pad> (id 0) column is never a target
        loss, n_tok = net.loss(u, i, torch.cat([tokens, torch.zeros(b, 1, dtype=torch.long)], 1))
        assert loss.ndim == 0 and torch.isfinite(loss) and n_tok == b * (t - 1)
    # the user and item positions see each other; text positions see only what came before
    assert not net.mask[0, 1] and not net.mask[1, 0] and net.mask[2, 3] and not net.mask[3, 2]


def test_seeded_construction_is_reproducible():
    def weights(seed):
        torch.manual_seed(seed)
        return torch.cat([p.flatten() for p in FiLMDecoder(CHANNELS, 2, 5).parameters()])

    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))


# ------------------------------------------------------------------ the torch-state helper
def _trained_pair():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), ConditionMLP(2, 4)
    opt = torch.optim.Adam([*a.parameters(), *b.parameters()], lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        b(a(torch.randn(5, 3))).pow(2).sum().backward()
        opt.step()
    return a, b, opt


def test_torch_state_round_trip_with_optimizer(tmp_path):
    a, b, opt = _trained_pair()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    save_torch_state(tmp_path / "s", kind="test-nets", modules={"a": a, "b": b}, optimizers={"adam": opt},
                     config={"width": 4})
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())  # saving changes nothing
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors", "optimizer.safetensors"}
    assert manifest["config"]["width"] == 4 and manifest["config"]["torch_state"]["modules"] == ["a", "b"]

    torch.manual_seed(1)
    a2, b2 = torch.nn.Linear(3, 2), ConditionMLP(2, 4)
    opt2 = torch.optim.Adam([*a2.parameters(), *b2.parameters()], lr=0.5)
    seen = {}

    def build(cfg):  # sizes from the manifest
        seen.update(cfg)
        return {"a": a2, "b": b2}

    out = load_torch_state(tmp_path / "s", kind="test-nets", modules=build, optimizers={"adam": opt2})
    assert out["config"]["width"] == 4 == seen["width"]
    for x, y in ((a, a2), (b, b2)):
        assert all(torch.equal(v, y.state_dict()[k]) for k, v in x.state_dict().items())
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 0.01
    for pid, st in s1["state"].items():
        assert all(torch.equal(v, s2["state"][pid][k]) for k, v in st.items())


def test_torch_state_errors(tmp_path):
    a, b, opt = _trained_pair()
    with pytest.raises(ValueError, match="torch_state"):
        save_torch_state(tmp_path / "x", kind="k", modules={"a": a}, config={"torch_state": 1})
    with pytest.raises(ValueError, match="without dots"):
        save_torch_state(tmp_path / "x", kind="k", modules={"a.b": a}, config={})
    save_torch_state(tmp_path / "s", kind="k", modules={"a": a, "b": b}, config={})
    with pytest.raises(ArtifactError, match=r"networks \['b'\] that were not given"):
        load_torch_state(tmp_path / "s", kind="k", modules={"a": torch.nn.Linear(3, 2)})
    with pytest.raises(ArtifactError, match="size mismatch"):
        load_torch_state(tmp_path / "s", kind="k", modules={"a": torch.nn.Linear(3, 7), "b": ConditionMLP(2, 4)})
    with pytest.raises(ArtifactError, match="without optimizer state"):
        load_torch_state(tmp_path / "s", kind="k", modules={"a": a, "b": b}, optimizers={"adam": opt})
    with pytest.raises(ArtifactError, match="expected 'other'"):
        load_torch_state(tmp_path / "s", kind="other", modules={"a": a, "b": b})
    blob = bytearray((tmp_path / "s" / "weights.safetensors").read_bytes())
    blob[-3] ^= 0xFF
    (tmp_path / "s" / "weights.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="checksum"):
        load_torch_state(tmp_path / "s", kind="k", modules={"a": a, "b": b})
    load_torch_state(tmp_path / "s", kind="k", modules={"a": a, "b": b}, verify=False)  # checksums skipped


def test_torch_state_reads_single_networks_saved_without_a_prefix(tmp_path):
    """Directories written before the helper (projection, PETER) hold one network's keys unprefixed."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(3, 2))
    save_weights_directory(tmp_path / "old", kind="image-projection",
                           tensors={k: v.detach().clone() for k, v in net.state_dict().items()}, config={"in_dim": 3})
    fresh = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(3, 2))
    load_torch_state(tmp_path / "old", kind="image-projection", modules={"projection": fresh})
    x = torch.randn(4, 3)
    assert torch.equal(net.eval()(x), fresh.eval()(x))
    assert np.isfinite(fresh(x).detach().numpy()).all()


def test_slice_grid_is_trilinear_slicing_of_the_bilateral_grid():
    """The separable slice (rows, then a 2-D grid_sample) gives the numbers of a 3-D grid_sample at
    (x, y, guide), gradients included, also for non-square images and grids."""
    import torch.nn.functional as F

    from recgen.generators.nets.studio import slice_grid

    torch.manual_seed(0)
    n, c, depth, gh, gw, hgt, wid = 2, 5, 4, 3, 6, 11, 17
    coeffs = torch.randn(n, c, depth, gh, gw, requires_grad=True)
    guide = torch.rand(n, hgt, wid)
    guide[0, 0, 0], guide[0, 0, 1] = 0.0, 1.0  # the ends of the guide's range
    ys, xs = torch.linspace(-1, 1, hgt), torch.linspace(-1, 1, wid)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    at = torch.stack([gx.expand(n, -1, -1), gy.expand(n, -1, -1), guide * 2 - 1], dim=-1)
    want = F.grid_sample(coeffs, at[:, None], mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    got = slice_grid(coeffs, guide)
    assert got.shape == (n, c, hgt, wid)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    w = torch.randn_like(want)
    g_want, = torch.autograd.grad((want * w).sum(), coeffs)
    g_got, = torch.autograd.grad((got * w).sum(), coeffs)
    torch.testing.assert_close(g_got, g_want, atol=1e-4, rtol=0)
