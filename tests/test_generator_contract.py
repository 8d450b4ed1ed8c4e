"""The generator contract, checked for every registered generator (issue 12).

In the spirit of scikit-learn's ``check_estimator`` and diffusers' ``ModelTesterMixin``: each
test is parametrized over every name in :data:`recgen.generators.REGISTRY`, so a newly
registered generator is checked without a line added here. Configs are shrunk by field name
(:data:`TINY`), and each generator is fitted once per module.
"""
from __future__ import annotations

import json
from dataclasses import fields, is_dataclass

import numpy as np
import pytest

pytest.importorskip("torch")

from recgen.errors import ArtifactError, NotFittedError, UnknownIdError  # noqa: E402
from recgen.generators import (  # noqa: E402
    REGISTRY, BlurbOutput, GenerationContext, PreviewOutput, generator_class, make_generator,
)
from recgen.generators.base import PROTOCOLS  # noqa: E402

#: tiny settings, applied to every generator whose config has the field (2 epochs, 32 px, ...)
TINY = {"epochs": 2, "image_size": 32, "base_channels": 8, "latent_dim": 8, "cond_hidden": 16, "pairs_per_item": 1,
        "d_model": 16, "n_heads": 2, "n_layers": 1, "max_len": 12, "min_freq": 1, "device": "cpu",
        "mood_epochs": 2, "editor_epochs": 1}
OUTPUTS = {"preview": PreviewOutput, "blurb": BlurbOutput}
NAMES = sorted(REGISTRY)


def tiny(name: str):
    own = {f.name for f in fields(REGISTRY[name].config)}
    return make_generator(name, **{k: v for k, v in TINY.items() if k in own})


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


@pytest.fixture(scope="module")
def model(saved_workdir):
    from recgen import Recgen

    return Recgen.load(saved_workdir / "model")  # the session's model, fitted on the sample catalog


@pytest.fixture(scope="module")
def context(model):
    return GenerationContext(model)  # generation needs no catalog


@pytest.fixture(scope="module", params=NAMES)
def fitted(request, model, sample):
    """(name, generator, what fit returned): one fit per registered name and module."""
    gen = tiny(request.param)
    returned = gen.fit(GenerationContext(model, sample))
    return request.param, gen, returned


@pytest.fixture(scope="module")
def pairs(model):
    items = [str(i) for i in model.items.ids[:4]]
    users = [str(u) for u in model.profiles.user_ids_[:2]] + [None, "no-such-user"]
    return items, users


def payload(out):
    """What must be equal for two outputs to count as the same."""
    if isinstance(out, PreviewOutput):
        return out.images.tobytes(), out.images.shape
    return out.texts, out.sources


def row(out, i):
    """Row ``i`` of an output, comparable with ``==``."""
    if isinstance(out, PreviewOutput):
        return out.images[i].tobytes()
    return out.texts[i], out.sources[i]


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_and_protocol(name):
    spec = REGISTRY[name]
    gen = make_generator(name)
    assert isinstance(gen, spec.cls) and type(gen).kind == spec.kind
    # runtime_checkable protocols check the members only (both kinds have the same ones): ``kind`` tells them apart
    assert isinstance(gen, PROTOCOLS[spec.kind])
    assert is_dataclass(gen.config) and isinstance(gen.config, spec.config)
    assert generator_class(name) is spec.cls


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted(name, context, tmp_path):
    gen = tiny(name)
    with pytest.raises(NotFittedError):
        gen.generate(context, [str(context.model.items.ids[0])], [None])
    with pytest.raises(NotFittedError):
        gen.save(tmp_path / "g")
    with pytest.raises(ValueError, match="catalog"):
        gen.fit(context)  # no catalog to train on: the error says so


def test_fit_returns_self_and_output_types(fitted, context, pairs):
    name, gen, returned = fitted
    assert returned is gen
    kind = REGISTRY[name].kind
    assert isinstance(gen, PROTOCOLS[kind])
    items, users = pairs
    out = gen.generate(context, items, users, seed=0)
    assert type(out) is OUTPUTS[kind]
    assert out.item_ids == items and len(out.user_ids) == len(items)
    if kind == "preview":
        n, h, w, c = out.images.shape
        assert out.images.dtype == np.uint8 and (n, c) == (len(items), 3) and h == w > 0
    else:
        assert len(out.texts) == len(items) and all(isinstance(t, str) and t.strip() for t in out.texts)
        assert len(out.sources) == len(items)
    empty = gen.generate(context, [], [], seed=0)
    assert type(empty) is OUTPUTS[kind] and empty.item_ids == []
    assert (empty.images.shape[0] if kind == "preview" else len(empty.texts)) == 0


def test_determinism_and_row_independence(fitted, context, pairs):
    _, gen, _ = fitted
    items, users = pairs
    a = gen.generate(context, items, users, seed=3)
    assert payload(a) == payload(gen.generate(context, items, users, seed=3))
    n = len(items)
    for i in (0, 2):  # a row alone is the same row as in the batch
        assert row(gen.generate(context, [items[i]], [users[i]], seed=3), 0) == row(a, i), i
    reordered = gen.generate(context, items[::-1], users[::-1], seed=3)
    assert [row(reordered, n - 1 - i) for i in range(n)] == [row(a, i) for i in range(n)]


def test_neutral_and_unknown_users(fitted, context, pairs):
    _, gen, _ = fitted
    items, _ = pairs
    neutral = gen.generate(context, items[:2], [None, None], seed=1)
    assert payload(neutral) == payload(gen.generate(context, items[:2], ["no-such-user", "nobody"], seed=1))


def test_unknown_item_is_named(fitted, context, pairs):
    _, gen, _ = fitted
    items, _ = pairs
    with pytest.raises(UnknownIdError, match="SKU-NOPE"):
        gen.generate(context, [items[0], "SKU-NOPE"], [None, None])
    with pytest.raises(ValueError):
        gen.generate(context, items[:2], [None])  # unpaired


def test_save_load_round_trip_and_tamper(fitted, context, pairs, tmp_path):
    name, gen, _ = fitted
    items, users = pairs
    before = gen.generate(context, items, users, seed=2)
    path = gen.save(tmp_path / name)
    assert (path / "manifest.json").is_file()
    assert payload(gen.generate(context, items, users, seed=2)) == payload(before)  # saving changes nothing
    loaded = generator_class(name).load(path, verify=True, device="cpu")
    assert type(loaded) is type(gen) and isinstance(loaded, PROTOCOLS[REGISTRY[name].kind])
    assert payload(loaded.generate(context, items, users, seed=2)) == payload(before)
    listed = json.loads((path / "manifest.json").read_text())["files"]
    target = max((path / f for f in listed), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        generator_class(name).load(path, verify=True, device="cpu")
    with pytest.raises(ArtifactError):
        generator_class(name).load(tmp_path / "nothing-here")
