"""recgen adapters (installed under the import name ``recgen_adapters``).

The folder is called ``adapters`` in the repository, but ``adapters`` is already a popular
PyPI package (AdapterHub), so it installs as ``recgen_adapters``::

    from recgen import Enricher
from recgen_adapters import RecgenFeatures

Every adapter calls the same core, :meth:`Enricher.enrich` (a pandas DataFrame in, a
DataFrame out), so a feature has the same value in-process, in scikit-learn, behind the
HTTP service, in the batch Parquet job and in the Ray Data job.

========================  ===========================================  ==================
adapter                   entry point                                  extra
========================  ===========================================  ==================
in-process API            :class:`recgen.Enricher`                      (none)
scikit-learn              :class:`RecgenFeatures`                       (none)
HTTP service              ``recgen serve DIR``, :mod:`.service`         ``recgen[serve]``
batch Parquet/CSV job     ``recgen enrich DIR -i .. -o ..``, :mod:`.batch`  (none)
Ray Data job              :func:`recgen_adapters.ray_job.enrich_dataset`  ``recgen[ray]``
re-ranking CF candidates  :class:`LearnedReranker`, :mod:`.rerank`      (``recgen[cf]`` for implicit)
========================  ===========================================  ==================
"""
from __future__ import annotations

from recgen._lazy import lazy_exports

__all__ = ["BlendReranker", "Enricher", "LearnedReranker", "RecgenFeatures", "enrich_frame"]

# Names are resolved on first use (PEP 562): the CLI loads this package for its plugin
# commands, and must not pay for scikit-learn on every `recgen --help`.
__getattr__, __dir__ = lazy_exports(__name__, {
    "Enricher": "recgen.enrich",  # the core every adapter calls, re-exported for convenience
    "enrich_frame": "recgen.enrich",
    "resolve_directory": "recgen.workdir",  # was here before the working-folder layout moved to the core
    "BlendReranker": "recgen_adapters.rerank",
    "LearnedReranker": "recgen_adapters.rerank",
    "RecgenFeatures": "recgen_adapters.sklearn_transformer",
})
