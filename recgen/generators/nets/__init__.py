"""The generators' torch networks, one file per generator family, each importable and testable alone.

=================  ==============================================================================
module             networks
=================  ==============================================================================
``nets.cvae``      :class:`ConditionMLP`, :class:`ConvEncoder`, :class:`FiLMDecoder`,
                   :class:`ProjectionDiscriminator` (the ``cvae`` / ``cgan`` previews)
``nets.peter``     :class:`PeterTransformer` (the ``peter`` blurbs)
=================  ==============================================================================

Only these modules import torch at their top; this package's ``__init__`` imports none of
them, so ``import recgen`` stays torch-free.
"""
