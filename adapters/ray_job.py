"""Ray Data job: enrich candidate sets that outgrow one machine.

Each Ray worker runs an :class:`EnrichActor` that loads the recgen directory once (from a
path every node can read: shared storage or a copy per node) and then enriches pandas
batches with the same :meth:`Enricher.enrich` every other adapter calls::

    import ray
    from recgen_adapters.ray_job import enrich_dataset

    ray.init()                                        # or ray.init(address="auto") on a cluster
    ds = ray.data.read_parquet("s3://bucket/candidates/")
    enrich_dataset(ds, "/mnt/models/recgen", concurrency=8).write_parquet("s3://bucket/enriched/")

Spark users get the same function through ``mapInPandas`` (see the README).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from recgen.errors import missing_extra

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("ray", "pip install 'recgen[ray]'", "the Ray Data job") from exc


class EnrichActor:
    """Stateful ``map_batches`` callable: loads the model once per actor, enriches each batch.

    Parameters
    ----------
    directory : str
        Saved recgen directory, readable on every node.
    enrich_kwargs : dict
        Passed to :meth:`Enricher.enrich` (``user_col``, ``item_col``, ``blurbs``, ...).
    load_kwargs : dict
        Passed to :meth:`Enricher.load`.
    torch_threads : int or None
        Torch intra-op threads per actor (1 keeps actors from oversubscribing cores).
    """

    def __init__(self, directory: str, enrich_kwargs: dict[str, Any] | None = None,
                 load_kwargs: dict[str, Any] | None = None, torch_threads: int | None = 1) -> None:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        from recgen.enrich import Enricher

        self.enricher = Enricher.load(directory, **(load_kwargs or {}))
        self.enrich_kwargs = dict(enrich_kwargs or {})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.enricher.enrich(batch, **self.enrich_kwargs)


def enrich_dataset(ds: "ray.data.Dataset", directory: str | Path, *, batch_size: int = 65_536,
                   concurrency: int | tuple[int, int] = 2, num_cpus: float = 1.0,
                   load_kwargs: dict[str, Any] | None = None, **enrich_kwargs: Any) -> "ray.data.Dataset":
    """Lazily add recgen columns to a Ray Dataset of candidates.

    Parameters
    ----------
    ds : ray.data.Dataset
        Rows with the id columns (``user_id``, ``item_id`` unless ``user_col=``/``item_col=``).
    directory : path
        Saved recgen directory (model/, optional generators/), readable from every worker.
    batch_size : int
        Rows per ``map_batches`` call.
    concurrency : int or (min, max)
        Number of actors (each holds one copy of the model in memory).
    num_cpus : float
        CPUs reserved per actor. Leave some of the cluster's CPUs free
        (``concurrency * num_cpus`` below the total): Ray Data's read and repartition tasks
        need a CPU too, and with every CPU held by idle actors the job waits forever.
    load_kwargs : dict, optional
        For :meth:`Enricher.load`.
    **enrich_kwargs
        For :meth:`Enricher.enrich` (``features``, ``blurbs``, ``previews`` with
        ``preview_format="bytes"``, ``user_col``, ``item_col``, ``prefix``, ``modalities``).

    Returns
    -------
    ray.data.Dataset
        Lazy; write it (``write_parquet``) or iterate it. Row order within each input block is kept.
    """
    from recgen.workdir import resolve_directory

    directory = Path(directory)
    resolve_directory(directory)  # fail here, on the driver, rather than in every actor
    if enrich_kwargs.get("previews") and enrich_kwargs.get("preview_format", "path") == "path":
        raise ValueError("previews in a Ray job must be preview_format='bytes' (workers do not share a preview_dir)")
    most = concurrency[1] if isinstance(concurrency, tuple) else concurrency
    total = ray.cluster_resources().get("CPU", 0) if ray.is_initialized() else 0
    if total and most * num_cpus >= total:
        warnings.warn(f"concurrency={most} actors x num_cpus={num_cpus} hold all {total:g} CPUs of the cluster; "
                      "Ray Data's read/repartition tasks then cannot run and the job may wait forever. "
                      "Fix: lower concurrency or num_cpus (e.g. num_cpus=0.5)", RuntimeWarning, stacklevel=2)
    return ds.map_batches(EnrichActor, batch_format="pandas", batch_size=batch_size, concurrency=concurrency,
                          num_cpus=num_cpus,
                          fn_constructor_kwargs={"directory": str(directory.resolve()), "enrich_kwargs": enrich_kwargs,
                                                 "load_kwargs": load_kwargs or {}})


def enrich_parquet(input: str, output: str, directory: str | Path, **kwargs: Any) -> None:
    """``read_parquet(input) -> enrich_dataset -> write_parquet(output)`` (paths or URIs Ray understands)."""
    enrich_dataset(ray.data.read_parquet(input), directory, **kwargs).write_parquet(output)
