"""recgen adapters (installed under the import name ``recgen_adapters``).

The folder is called ``adapters`` in the repository, but ``adapters`` is already a popular
PyPI package (AdapterHub), so it installs as ``recgen_adapters``::

    from recgen_adapters import enrich_frame

Every adapter calls the same core function, :func:`recgen.enrich.enrich_candidates`, so a
feature has the same value in-process, in a batch job or behind a service.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def enrich_frame(model_dir: str | Path, candidates: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Load a saved recgen model and add its features to ``candidates`` (see ``Recgen.enrich``)."""
    from recgen.model import Recgen

    return Recgen.load(model_dir).enrich(candidates, **kwargs)


__all__ = ["enrich_frame"]
