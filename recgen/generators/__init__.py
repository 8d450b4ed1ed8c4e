"""Generators of personalized content, looked up by short name (:mod:`recgen.generators.registry`).

=========  ===================================  ==========================================
name       class                                what it makes
=========  ===================================  ==========================================
cvae       :class:`CVAEGenerator`               preview images (conditional VAE)
cgan       :class:`CVAEGenerator` + adversarial preview images (cVAE + projection-discriminator
                                                hinge loss, sharper)
grounded   :class:`GroundedBlurbGenerator`      blurbs made only of the item's own sentences
peter      :class:`PeterBlurbGenerator`         blurbs from a small conditional transformer
=========  ===================================  ==========================================

Every generator follows one contract (:mod:`recgen.generators.base`): ``fit(context)``,
``generate(context, item_ids, user_ids, *, seed)``, ``save``, ``load(dir, *, verify, device)``,
where the context (:class:`GenerationContext`) holds the fitted model and the catalog.
:class:`ContentGenerator` pairs one preview and one blurb generator behind a cache.

>>> gen = make_generator("cgan", epochs=10)
"""
from __future__ import annotations

from recgen.generators.base import BlurbGenerator, BlurbOutput, PreviewGenerator, PreviewOutput
from recgen.generators.context import GenerationContext
from recgen.generators.registry import (
    BLURB_GENERATORS, IMAGE_GENERATORS, REGISTRY, GeneratorSpec, config_class, generator_class, make_generator,
)
# last: personalized builds on the registry above
from recgen.generators.personalized import (  # noqa: E402
    ContentGenerator, GenerationCache, GenerationConfig, GenerationOutput,
)

__all__ = ["BLURB_GENERATORS", "BlurbGenerator", "BlurbOutput", "ContentGenerator", "GenerationCache",
           "GenerationConfig", "GenerationContext", "GenerationOutput", "GeneratorSpec", "IMAGE_GENERATORS",
           "PreviewGenerator", "PreviewOutput", "REGISTRY", "config_class", "generator_class", "make_generator"]
