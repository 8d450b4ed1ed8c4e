"""recgen adapters (installed under the import name ``recgen_adapters``).

The folder is called ``adapters`` in the repository, but ``adapters`` is already a popular
PyPI package (AdapterHub), so it installs as ``recgen_adapters``::

    from recgen_adapters import Enricher, RecgenFeatures

Every adapter calls the same core, :meth:`Enricher.enrich` (a pandas DataFrame in, a
DataFrame out), so a feature has the same value in-process, in scikit-learn, behind the
HTTP service, in the batch Parquet job and in the Ray Data job.

========================  ===========================================  ==================
adapter                   entry point                                  extra
========================  ===========================================  ==================
in-process API            :class:`Enricher`                             (none)
scikit-learn              :class:`RecgenFeatures`                       (none)
HTTP service              ``recgen serve DIR``, :mod:`.service`         ``recgen[serve]``
batch Parquet/CSV job     ``recgen enrich DIR -i .. -o ..``, :mod:`.batch`  (none)
Ray Data job              :func:`recgen_adapters.ray_job.enrich_dataset`  ``recgen[ray]``
re-ranking CF candidates  :class:`LearnedReranker`, :mod:`.rerank`      (``recgen[cf]`` for implicit)
========================  ===========================================  ==================
"""
from __future__ import annotations

from recgen_adapters.core import Enricher, enrich_frame, resolve_directory
from recgen_adapters.sklearn_transformer import RecgenFeatures

__all__ = ["Enricher", "RecgenFeatures", "enrich_frame", "resolve_directory"]
