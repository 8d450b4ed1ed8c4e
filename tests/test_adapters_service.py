"""HTTP service: endpoints, auth, limits, errors (FastAPI TestClient)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from recgen import Enricher  # noqa: E402
from recgen_adapters.service import ServiceConfig, create_app  # noqa: E402

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def enricher(saved_workdir) -> Enricher:
    return Enricher.load(saved_workdir)


@pytest.fixture(scope="module")
def client(enricher):
    with TestClient(create_app(enricher)) as c:
        yield c


@pytest.fixture(scope="module")
def secured(enricher):
    cfg = ServiceConfig(api_keys=(KEY, "other-key-abcdef"), max_candidates=50, max_body_bytes=64 * 1024)
    with TestClient(create_app(enricher, cfg)) as c:
        yield c


def _rows(candidates, n=20):
    return [{"user_id": str(u), "item_id": str(i)} for u, i in zip(candidates["user_id"][:n], candidates["item_id"][:n])]


def test_enrich_matches_core(client, enricher, candidates):
    r = client.post("/enrich", json={"candidates": _rows(candidates, 60)})
    assert r.status_code == 200, r.text
    body = r.json()
    core = enricher.enrich(candidates.head(60)[["user_id", "item_id"]])
    assert body["columns"] == list(core.columns)
    for col in ["recgen_sim_fused", "recgen_sim_text", "recgen_sim_image", "recgen_sim_review"]:
        got = np.array([np.nan if row[col] is None else row[col] for row in body["rows"]], dtype=np.float32)
        np.testing.assert_array_equal(got, core[col].to_numpy())
    assert [row["recgen_known_user"] for row in body["rows"]] == core["recgen_known_user"].tolist()
    assert body["rows"][3]["recgen_sim_fused"] is None  # unknown user: null, not an error


def test_enrich_blurbs_and_preview_urls(client, candidates):
    r = client.post("/enrich", json={"candidates": _rows(candidates, 6), "features": False, "blurbs": True,
                                     "previews": True})
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[4]["recgen_preview"] is None and rows[4]["recgen_blurb"] is None  # unknown item
    url = rows[0]["recgen_preview"]
    assert url.startswith("/previews/") and url.endswith(".png") and rows[0]["recgen_blurb"]
    png = client.get(url)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (32, 32)
    # the served cvae draws every preview from vectors: the header and the PNG say "generated"
    assert png.headers["x-recgen-generated"] == "true"
    assert Image.open(io.BytesIO(png.content)).text["recgen:generated"] == "true"
    assert client.get(url).content == png.content  # deterministic, from the LRU
    assert client.get("/previews/_/" + url.rsplit("/", 1)[1]).status_code == 200  # neutral


def test_recommend_search_similar(client, enricher, sample):
    user = enricher.model.profiles.user_ids_[0]
    r = client.post("/recommend", json={"user_id": user, "k": 5})
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    ids, _ = enricher.model.recommend(user, 5)
    assert [x["item_id"] for x in r.json()["items"]] == list(ids)
    hist = sample.items["item_id"][:3].tolist()
    assert client.post("/recommend", json={"history": hist, "k": 3}).status_code == 200
    desc = sample.items["description"].iloc[0]
    r = client.post("/search", json={"query": desc, "k": 3, "modality": "image"})
    assert r.status_code == 200 and r.json()["items"][0]["item_id"] == sample.items["item_id"].iloc[0]
    img = open(sample.items["image_path"].iloc[0], "rb").read()
    r = client.post("/search", files={"image": ("x.png", img, "image/png")}, data={"k": "2", "modality": "text"})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["item_id"] == sample.items["item_id"].iloc[0]
    item = sample.items["item_id"].iloc[0]
    r = client.get(f"/items/{item}/similar", params={"k": 4})
    assert r.status_code == 200 and len(r.json()["items"]) == 4
    assert item not in [x["item_id"] for x in r.json()["items"]]


@pytest.mark.parametrize("method,path,body,status,message", [
    ("post", "/enrich", {"candidates": []}, 422, "at least 1"),
    ("post", "/enrich", {"candidates": [{"user_id": "u"}]}, 422, "item_id"),
    ("post", "/enrich", {"candidates": [{"user_id": "u", "item_id": "i", "x": 1}]}, 422, "Extra inputs"),
    ("post", "/enrich", {"candidates": [{"user_id": "u" * 300, "item_id": "i"}]}, 422, "at most 256"),
    ("post", "/enrich", {"candidates": [{"user_id": 1.5, "item_id": "i"}]}, 422, "strings"),
    ("post", "/recommend", {"user_id": "NOBODY"}, 404, "NOBODY"),
    ("post", "/recommend", {}, 422, "exactly one of user_id"),
    ("post", "/recommend", {"user_id": "U0001", "k": 0}, 422, "greater than or equal to 1"),
    ("post", "/recommend", {"history": ["nope"]}, 404, "history"),
    ("post", "/search", {"query": "   "}, 422, "non-blank"),
    ("post", "/search", {"query": "x", "k": 5000}, 422, "less than or equal"),
    ("get", "/items/NO-ITEM/similar", None, 404, "NO-ITEM"),
    ("get", "/items/SKU-0001/similar?modality=sound", None, 422, "modality"),
    ("get", "/previews/_/NO-ITEM.png", None, 404, "NO-ITEM"),
    ("get", "/previews/_/SKU-0001.jpg", None, 422, "png"),
])
def test_bad_requests_get_clear_4xx(client, method, path, body, status, message):
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert message in r.text


def test_search_rejects_bad_uploads_and_types(client):
    r = client.post("/search", files={"image": ("x.png", b"not an image", "image/png")})
    assert r.status_code == 422 and "format not recognised" in r.text
    r = client.post("/search", files={"other": ("x.png", b"abc", "image/png")})
    assert r.status_code == 422 and "'image'" in r.text
    r = client.post("/search", content=b"query=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_auth_limits_and_open_health(secured, candidates):
    assert secured.get("/healthz").status_code == 200  # probes need no key
    r = secured.post("/enrich", json={"candidates": _rows(candidates, 2)})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert KEY not in r.text
    assert secured.post("/enrich", json={"candidates": _rows(candidates, 2)},
                        headers={"X-API-Key": "wrong-key-xxxxxxxx"}).status_code == 401
    ok = secured.post("/enrich", json={"candidates": _rows(candidates, 2)}, headers={"X-API-Key": KEY})
    assert ok.status_code == 200
    ok = secured.post("/enrich", json={"candidates": _rows(candidates, 2)},
                      headers={"Authorization": "Bearer other-key-abcdef"})
    assert ok.status_code == 200
    r = secured.post("/enrich", json={"candidates": _rows(candidates, 60)}, headers={"X-API-Key": KEY})
    assert r.status_code == 413 and "at most 50" in r.text
    big = json.dumps({"candidates": [{"user_id": "u", "item_id": "i" * 200}] * 400}).encode()
    r = secured.post("/enrich", content=big, headers={"X-API-Key": KEY, "content-type": "application/json"})
    assert r.status_code == 413
    assert secured.get("/metrics").status_code == 401
    assert secured.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_rate_limit_per_key(enricher):
    cfg = ServiceConfig(api_keys=(KEY, "other-key-abcdef"), rate_limit=0.5, rate_burst=3)
    with TestClient(create_app(enricher, cfg)) as c:
        codes = [c.get("/items/SKU-0001/similar", headers={"X-API-Key": KEY}).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/items/SKU-0001/similar", headers={"X-API-Key": KEY})
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/items/SKU-0001/similar", headers={"X-API-Key": "other-key-abcdef"}).status_code == 200


def test_metrics_and_openapi(client, candidates):
    client.post("/enrich", json={"candidates": _rows(candidates, 5)})
    text = client.get("/metrics").text
    assert 'recgen_http_requests_total{method="POST",route="/enrich",status="200"}' in text
    assert "recgen_enriched_candidates_total" in text and "recgen_model_items 240.0" in text
    schema = client.get("/openapi.json").json()
    assert {"/enrich", "/recommend", "/search", "/items/{item_id}/similar", "/previews/{user_id}/{item_file}",
            "/healthz", "/metrics"} <= set(schema["paths"])
    content = schema["paths"]["/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)


def test_service_config_validation():
    with pytest.raises(ValueError, match="at least 8"):
        ServiceConfig(api_keys=("short",))
    with pytest.raises(TypeError, match="tuple"):
        ServiceConfig(api_keys="a-single-key-string")
    with pytest.raises(ValueError, match="max_candidates"):
        ServiceConfig(max_candidates=0)


def test_preview_urls_for_ids_that_cannot_be_path_segments(client, candidates):
    item = str(candidates["item_id"].iloc[0])
    rows = [{"user_id": u, "item_id": item} for u in ("a/b", "..", "_", "plain")]
    r = client.post("/enrich", json={"candidates": rows, "features": False, "previews": True})
    assert r.status_code == 200, r.text
    urls = [row["recgen_preview"] for row in r.json()["rows"]]
    assert urls[3] == f"/previews/plain/{item}.png"
    assert all(u.startswith("/previews?") for u in urls[:3])   # query form: no decoding or collapsing
    for url in urls:
        got = client.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", url
    assert client.get("/previews", params={"item_id": "NO-ITEM"}).status_code == 404
    assert client.get("/previews").status_code == 422
