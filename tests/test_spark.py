"""The README's Spark recipe on a real local PySpark session (issue 14, item 3).

The Python block under "**Spark** runs the same function through ``mapInPandas``" is taken
from README.md as it stands (only the model path is replaced by the sample shop's saved
folder) and run against ``candidates_sdf``, a Spark DataFrame of the shared candidate rows;
the features must be bit-identical to the in-process :class:`recgen.Enricher`, as for every
other adapter (tests/test_adapters_identity.py). Needs a JDK (Debian ``openjdk-17-jdk-headless``,
installed by ``.ci/system-deps``) and pyspark (``.[spark]``); without them the test skips
with the reason, and fails under ``RECGEN_REQUIRE_SYSTEM=1`` (CI).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, require_system

from recgen import Enricher

SIMS = ["recgen_sim_fused", "recgen_sim_text", "recgen_sim_image", "recgen_sim_review"]
FLAGS = ["recgen_known_user", "recgen_known_item"]
README_MODEL_PATH = "/mnt/models/recgen"

pytestmark = pytest.mark.filterwarnings(
    # pyspark 4.3 warns on every pandas call under pandas 3; the values are checked below
    "ignore:PySpark does not yet fully support pandas:FutureWarning")


def readme_spark_recipe() -> str:
    """The README's Spark block: the first ```python block after the "**Spark**" paragraph."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("**Spark** runs the same function through `mapInPandas`")
    block = re.search(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert block, "README.md: no python block after the Spark paragraph"
    code = block.group(1)
    assert "mapInPandas(enrich_batches" in code and README_MODEL_PATH in code, code
    return code


@pytest.fixture(scope="session")
def java() -> None:
    """Session-scoped, so a missing JDK skips before the session fixtures (the fitted model) are built."""
    java = shutil.which("java") or (Path(os.environ["JAVA_HOME"]) / "bin" / "java"
                                    if os.environ.get("JAVA_HOME") else None)
    require_system("java", java is not None and Path(java).exists(),
                   "no `java` on PATH or JAVA_HOME (Debian package openjdk-17-jdk-headless)")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        require_system("pyspark", False, "the Python package is not installed: pip install -e '.[spark]'")


@pytest.fixture(scope="module")
def spark(java):
    from pyspark.sql import SparkSession

    # the Python workers must run this interpreter (recgen and torch are installed in it)
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, whatever the host name resolves to
    session = (
        SparkSession.builder.master("local[1]")
        .appName("recgen-readme-spark")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # several Arrow batches per partition, so enrich_batches really iterates
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_readme_spark_recipe_gives_the_in_process_features(java, spark, saved_workdir, candidates):
    frame = candidates[["user_id", "item_id", "cf_score"]]  # the columns the README's schema names
    reference = Enricher.load(saved_workdir).enrich(frame)

    namespace = {"__name__": "readme_spark_recipe",
                 "candidates_sdf": spark.createDataFrame(frame).repartition(1)}
    code = readme_spark_recipe().replace(README_MODEL_PATH, str(saved_workdir))
    exec(compile(code, "README.md (Spark recipe)", "exec"), namespace)  # noqa: S102 - our own README
    got = namespace["enriched"].toPandas()

    assert len(got) == len(reference) == len(candidates)
    # row order survives mapInPandas on one partition: compare row by row
    assert got["user_id"].tolist() == reference["user_id"].tolist()
    assert got["item_id"].tolist() == reference["item_id"].tolist()
    np.testing.assert_array_equal(got["cf_score"].to_numpy(), reference["cf_score"].to_numpy())
    for col in SIMS:  # Spark's float column is float32: bit-identical, NaN where unknown
        values = np.asarray(got[col], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(values, reference[col].to_numpy(), err_msg=col)
    for col in FLAGS:
        assert got[col].astype(bool).tolist() == reference[col].tolist(), col
    # the fixture's edge cases went through Spark too: an unknown user, an unknown item
    assert not got.loc[3, "recgen_known_user"] and np.isnan(got.loc[3, "recgen_sim_fused"])
    assert not got.loc[4, "recgen_known_item"] and np.isnan(got.loc[4, "recgen_sim_fused"])
