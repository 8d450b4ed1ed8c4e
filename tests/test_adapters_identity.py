"""One candidate set through every adapter: identical feature values everywhere.

Python API, scikit-learn transformer, HTTP service (in-process TestClient and a real
``recgen serve`` process on loopback), the batch Parquet job and the Ray Data job all call
:meth:`Enricher.enrich`; this test holds them to bit-identical float32 similarities and the
same known/unknown flags, including unknown users, unknown items and a duplicated row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recgen import Enricher
from recgen_adapters import RecgenFeatures

SIMS = ["recgen_sim_fused", "recgen_sim_text", "recgen_sim_image", "recgen_sim_review"]
FLAGS = ["recgen_known_user", "recgen_known_item"]


@pytest.fixture(scope="module")
def enricher(saved_workdir) -> Enricher:
    return Enricher.load(saved_workdir)


@pytest.fixture(scope="module")
def reference(enricher, candidates) -> pd.DataFrame:
    out = enricher.enrich(candidates)
    assert list(out.columns[: len(candidates.columns)]) == list(candidates.columns)
    assert out[SIMS].dtypes.eq(np.float32).all()
    # the fixture really exercises the edge cases: unknown user, unknown item, duplicates
    assert not out.loc[3, "recgen_known_user"] and not out.loc[4, "recgen_known_item"]
    assert np.isnan(out.loc[3, "recgen_sim_fused"]) and np.isnan(out.loc[4, "recgen_sim_fused"])
    assert out.loc[5, SIMS].equals(out.loc[6, SIMS])
    assert out["recgen_sim_fused"].notna().sum() >= len(out) - 3
    return out


def _same(got: pd.DataFrame, ref: pd.DataFrame, where: str) -> None:
    """Bit-identical float32 similarities (NaN where the reference has NaN) and equal flags."""
    assert len(got) == len(ref), where
    for col in SIMS:
        a = np.asarray(got[col], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(a, ref[col].to_numpy(), err_msg=f"{where}: {col}")
    for col in FLAGS:
        assert np.asarray(got[col], dtype=bool).tolist() == ref[col].tolist(), f"{where}: {col}"


def _json_rows(df: pd.DataFrame) -> list[dict]:
    return [{"user_id": str(u), "item_id": str(i)} for u, i in zip(df["user_id"], df["item_id"])]


def _from_json(body: dict) -> pd.DataFrame:
    rows = body["rows"]
    data = {c: [np.nan if r[c] is None else r[c] for r in rows] for c in SIMS}
    data.update({c: [bool(r[c]) for r in rows] for c in FLAGS})
    return pd.DataFrame(data)


def test_sklearn_transformer(enricher, candidates, reference):
    tf = RecgenFeatures(enricher, fill_value=None, passthrough=False).fit(candidates)
    out = pd.DataFrame(tf.transform(candidates), columns=tf.get_feature_names_out())
    _same(out, reference, "RecgenFeatures")
    # the default (fill 0, pass-through cf_score and rank) only fills the NaNs
    full = RecgenFeatures(enricher).fit(candidates)
    arr = pd.DataFrame(full.transform(candidates), columns=full.get_feature_names_out())
    np.testing.assert_array_equal(arr["cf_score"], candidates["cf_score"])
    np.testing.assert_array_equal(arr["recgen_sim_fused"].astype(np.float32),
                                  reference["recgen_sim_fused"].fillna(0).to_numpy())


def test_http_testclient(enricher, candidates, reference):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from recgen_adapters.service import create_app

    with TestClient(create_app(enricher)) as client:
        r = client.post("/enrich", json={"candidates": _json_rows(candidates)})
    assert r.status_code == 200, r.text
    _same(_from_json(r.json()), reference, "TestClient")


def test_http_real_uvicorn_process(saved_workdir, candidates, reference, tmp_path):
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from recgen_adapters.testing import serve_subprocess

    keyfile = tmp_path / "keys"
    keyfile.write_text("identity-test-key-0123\n")
    with serve_subprocess(saved_workdir, log_path=tmp_path / "serve.log",
                          args=["--api-key-file", str(keyfile), "--log-level", "warning"]) as served:
        body = {"candidates": _json_rows(candidates)}
        assert httpx.post(served.url + "/enrich", json=body, timeout=60).status_code == 401
        r = httpx.post(served.url + "/enrich", json=body, headers={"X-API-Key": "identity-test-key-0123"}, timeout=60)
        assert r.status_code == 200, r.text
        _same(_from_json(r.json()), reference, "uvicorn process")
    assert "identity-test-key-0123" not in served.log()  # secrets never logged


def test_batch_job(enricher, candidates, reference, tmp_path):
    from recgen_adapters.batch import enrich_file

    src, dst = tmp_path / "c.parquet", tmp_path / "e.parquet"
    candidates.to_parquet(src, index=False)
    enrich_file(enricher, src, dst, chunk_rows=37)  # chunks that do not divide the rows
    out = pd.read_parquet(dst)
    pd.testing.assert_frame_equal(out[list(candidates.columns)].reset_index(drop=True),
                                  candidates.reset_index(drop=True), check_dtype=False)
    _same(out, reference, "batch job")


@pytest.mark.slow  # starts a Ray cluster (~30 s); `make test-slow` runs it
def test_ray_job(saved_workdir, candidates, reference):
    ray = pytest.importorskip("ray")
    from recgen_adapters.ray_job import enrich_dataset

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    try:
        frame = candidates.assign(row_id=np.arange(len(candidates)))
        # four blocks; two actors at half a CPU each leave a CPU for Ray Data's own tasks
        ds = ray.data.from_pandas([frame.iloc[i::4] for i in range(4)])
        out = enrich_dataset(ds, saved_workdir, batch_size=64, concurrency=2, num_cpus=0.5).to_pandas()
    finally:
        if started:
            ray.shutdown()
    out = out.sort_values("row_id").reset_index(drop=True)
    assert out["row_id"].tolist() == list(range(len(candidates)))  # nothing lost or duplicated
    _same(out, reference, "Ray Data job")
