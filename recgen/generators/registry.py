"""The one table of generators: name -> kind, class, config class, preset.

Everything else is derived from :data:`REGISTRY`: the name lists
(:data:`IMAGE_GENERATORS`, :data:`BLURB_GENERATORS`), :func:`make_generator`,
:func:`config_class`, the class :meth:`ContentGenerator.load
<recgen.generators.personalized.ContentGenerator.load>` uses for each saved part, and the
shared contract test (``tests/test_generator_contract.py``), which runs over every name.
A new generator is one class implementing :class:`~recgen.generators.base.PreviewGenerator`
or :class:`~recgen.generators.base.BlurbGenerator` plus one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Mapping

from recgen.generators.cvae import CVAEConfig, CVAEGenerator
from recgen.generators.grounded import GroundedBlurbConfig, GroundedBlurbGenerator
from recgen.generators.peter import PeterBlurbGenerator, PeterConfig
from recgen.generators.studio import StudioConfig, StudioGenerator

KINDS = ("preview", "blurb")


@dataclass(frozen=True)
class GeneratorSpec:
    """One registered generator.

    Attributes
    ----------
    kind : {"preview", "blurb"}
        What it makes (equals ``cls.kind``).
    cls : type
        The generator class; constructed as ``cls(config)``.
    config : type
        Its config dataclass.
    preset : mapping
        Config fields this name sets on top of the dataclass defaults.
    summary : str
        One line for listings and docs.
    """

    kind: str
    cls: type
    config: type
    preset: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        if getattr(self.cls, "kind", None) != self.kind:
            raise ValueError(f"{self.cls.__name__}.kind is {getattr(self.cls, 'kind', None)!r}; "
                             f"the entry says {self.kind!r}")
        object.__setattr__(self, "preset", MappingProxyType(dict(self.preset)))


REGISTRY: Mapping[str, GeneratorSpec] = MappingProxyType({
    "studio": GeneratorSpec("preview", StudioGenerator, StudioConfig, {},
                            "previews that keep the product photo and present it for the user; "
                            "text-only items edited from a retrieved exemplar (cGAN)"),
    "cvae": GeneratorSpec("preview", CVAEGenerator, CVAEConfig, {"adversarial_weight": 0.0},
                          "preview images (conditional VAE)"),
    "cgan": GeneratorSpec("preview", CVAEGenerator, CVAEConfig, {"adversarial_weight": 0.05},
                          "preview images (cVAE + projection-discriminator hinge loss, sharper)"),
    "grounded": GeneratorSpec("blurb", GroundedBlurbGenerator, GroundedBlurbConfig, {},
                              "blurbs naming a shared-attribute history item + the item's own sentences"),
    "peter": GeneratorSpec("blurb", PeterBlurbGenerator, PeterConfig, {},
                           "blurbs from a small conditional transformer"),
})


def names(kind: str) -> tuple[str, ...]:
    """Registered names of generators of ``kind`` ("preview" or "blurb"), in table order."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return tuple(n for n, spec in REGISTRY.items() if spec.kind == kind)


IMAGE_GENERATORS = names("preview")
BLURB_GENERATORS = names("blurb")


def spec(name: str) -> GeneratorSpec:
    """The registry entry of ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown generator {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


def generator_class(name: str) -> type:
    """The class of generator ``name`` (its ``load`` reads a saved generator)."""
    return spec(name).cls


def config_class(name: str) -> type:
    """The config dataclass of generator ``name``."""
    return spec(name).config


def make_generator(name: str, config: Any | None = None, **overrides: Any):
    """Instantiate generator ``name`` with its config (defaults + registry preset + ``overrides``).

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.
    config : dataclass, optional
        Used instead of the defaults and preset.
    **overrides
        Config fields.

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones) or unknown config field.

    Examples
    --------
    >>> gen = make_generator("cgan", epochs=10)
    """
    s = spec(name)
    cfg = config if config is not None else s.config(**s.preset)
    known = {f.name for f in fields(s.config)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"{name!r} config has no field(s) {sorted(unknown)}; fields: {sorted(known)}")
    if overrides:
        cfg = replace(cfg, **overrides)
    return s.cls(cfg)


def quick_overrides(name: str, epochs: int) -> dict[str, Any]:
    """Config overrides for a short training of preview generator ``name`` (demos, report examples).

    ``epochs`` goes to the generator's main training loop: the studio's text-to-image editor
    (``editor_epochs``; the rest of its training is short anyway), the CVAE's ``epochs`` (with
    two user pairs per item).
    """
    own = {f.name for f in fields(config_class(name))}
    if "editor_epochs" in own:
        return {"editor_epochs": int(epochs)}
    if "epochs" in own:
        return {"epochs": int(epochs), **({"pairs_per_item": 2} if "pairs_per_item" in own else {})}
    return {}
