"""Generators of personalized content, looked up by short name.

=========  ===================================  ==========================================
name       class                                what it makes
=========  ===================================  ==========================================
cvae       :class:`CVAEGenerator`               preview images (conditional VAE)
cgan       :class:`CVAEGenerator` + adversarial preview images (cVAE + projection-discriminator
                                                hinge loss, sharper)
grounded   :class:`GroundedBlurbGenerator`      blurbs made only of the item's own sentences
peter      :class:`PeterBlurbGenerator`         blurbs from a small conditional transformer
=========  ===================================  ==========================================

>>> gen = make_generator("cgan", epochs=10)
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from recgen.generators.base import BlurbOutput, PreviewOutput

REGISTRY: dict[str, tuple[str, str, dict[str, Any]]] = {
    # name: (module, class, config overrides)
    "cvae": ("recgen.generators.cvae", "CVAEGenerator", {"adversarial_weight": 0.0}),
    "cgan": ("recgen.generators.cvae", "CVAEGenerator", {"adversarial_weight": 0.05}),
    "grounded": ("recgen.generators.grounded", "GroundedBlurbGenerator", {}),
    "peter": ("recgen.generators.peter", "PeterBlurbGenerator", {}),
}
_CONFIGS = {"CVAEGenerator": "CVAEConfig", "GroundedBlurbGenerator": "GroundedBlurbConfig",
            "PeterBlurbGenerator": "PeterConfig"}

IMAGE_GENERATORS = ("cvae", "cgan")
BLURB_GENERATORS = ("grounded", "peter")


def config_class(name: str):
    """The config dataclass of generator ``name``."""
    import importlib

    module, cls, _ = _lookup(name)
    return getattr(importlib.import_module(module), _CONFIGS[cls])


def make_generator(name: str, config: Any | None = None, **overrides: Any):
    """Instantiate generator ``name`` with its config (defaults + registry presets + ``overrides``).

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones) or unknown config field.
    """
    import importlib

    module, cls, preset = _lookup(name)
    mod = importlib.import_module(module)
    cfg_cls = getattr(mod, _CONFIGS[cls])
    cfg = config if config is not None else cfg_cls(**preset)
    known = {f.name for f in fields(cfg_cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"{name!r} config has no field(s) {sorted(unknown)}; fields: {sorted(known)}")
    if overrides:
        cfg = replace(cfg, **overrides)
    return getattr(mod, cls)(cfg)


def _lookup(name: str):
    if name not in REGISTRY:
        raise ValueError(f"unknown generator {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


__all__ = ["BLURB_GENERATORS", "BlurbOutput", "IMAGE_GENERATORS", "PreviewOutput", "REGISTRY", "config_class",
           "make_generator"]
