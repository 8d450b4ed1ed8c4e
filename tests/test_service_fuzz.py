"""Fuzzing the HTTP service: schemathesis against its own OpenAPI schema, hypothesis on the request models.

Every operation of ``/openapi.json`` is called with generated (valid and invalid) requests;
no response may be a 5xx, and answers must match the schema the service publishes. Without
an API key every protected operation must answer 401 (never a 5xx). The hypothesis tests
throw huge strings, NaN/inf, wrong types and oversized lists at the request models: the
answer is a 422 naming the offending field, never a 500.
"""
from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from recgen import Enricher  # noqa: E402
from recgen_adapters.service import MAX_ID_LENGTH, MAX_K, ServiceConfig, create_app  # noqa: E402

KEY = "fuzz-key-0123456789"
OPEN_PATHS = {"/healthz"}
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_app(saved_workdir):
    # a small candidate cap keeps generated batches cheap; the limit itself is part of the contract
    cfg = ServiceConfig(api_keys=(KEY,), max_candidates=64, max_body_bytes=256 * 1024)
    enricher = Enricher.load(saved_workdir)
    # load the text encoder now: the first text /search would otherwise load it inside
    # schemathesis' 10 s read timeout, which a busy 2-core machine can exceed
    enricher.model.space.encode_text(["warm-up"])
    return create_app(enricher, cfg)


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


# Every operation of the published schema (test_fuzz_covers_every_operation keeps this list whole).
# schemathesis' own pytest loader (schemathesis.pytest.from_fixture) breaks on pytest 9, so the
# cases come from APIOperation.as_strategy under a plain hypothesis @given.
OPERATIONS = [("POST", "/enrich"), ("POST", "/recommend"), ("POST", "/search"), ("GET", "/items/{item_id}/similar"),
              ("GET", "/previews/{user_id}/{item_file}"), ("GET", "/previews"), ("GET", "/healthz"),
              ("GET", "/metrics"), ("POST", "/admin/reload")]
NO_PARAMETERS = {("GET", "/healthz"), ("GET", "/metrics")}  # nothing to make invalid
CASES = [(m, p, mode) for m, p in OPERATIONS for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or (m, p) not in NO_PARAMETERS]


def test_fuzz_covers_every_operation(api_schema):
    published = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert published == set(OPERATIONS)


def _cases(api_schema, method: str, path: str, mode: GenerationMode):
    return api_schema[path][method].as_strategy(generation_mode=mode)


@pytest.mark.parametrize("method,path,mode", CASES, ids=[f"{m}-{p}-{mode}" for m, p, mode in CASES])
def test_fuzz_with_key_no_5xx_and_schema_conformance(api_schema, method, path, mode):
    """Generated requests with a valid key: never a 5xx; every response matches the published schema."""
    @given(case=_cases(api_schema, method, path, mode))
    @FUZZ
    def run(case):
        case.call_and_validate(headers={"X-API-Key": KEY}, checks=[not_a_server_error, response_schema_conformance])

    run()


@pytest.mark.parametrize("method,path", OPERATIONS)
def test_fuzz_without_key_is_401_never_5xx(api_schema, method, path):
    """Generated requests without a key: 401 on every protected operation, never a 5xx."""
    @given(case=_cases(api_schema, method, path, GenerationMode.POSITIVE))
    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call()
        if path in OPEN_PATHS:
            assert response.status_code < 500, response.text
        else:
            assert response.status_code == 401, (path, response.status_code, response.text)
            assert response.headers["www-authenticate"] == ["Bearer"]

    run()


# ----------------------------------------------------------------- request models
@pytest.fixture(scope="module")
def client(fuzz_app):
    with TestClient(fuzz_app, headers={"X-API-Key": KEY}) as c:
        yield c


def _post_raw(client, path: str, body) -> "httpx.Response":  # noqa: F821
    # json.dumps writes NaN/Infinity tokens, which Python's JSON parser (and so the service) accepts
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _assert_422_naming(r, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text[:500])
    assert field in r.text, r.text[:500]


nasty_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (math.isfinite(x) and x == int(x))),
    st.just(float("nan")), st.just(float("inf")), st.just(float("-inf")), st.booleans(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
too_long = st.integers(MAX_ID_LENGTH + 1, 20_000).map(lambda n: "x" * n)
bad_ids = st.one_of(nasty_scalars, too_long, st.just(""), st.none())
bad_k = st.one_of(nasty_scalars, st.integers(max_value=0), st.integers(min_value=MAX_K + 1),
                  st.text(alphabet="abc", min_size=1, max_size=5))


@given(field=st.sampled_from(["user_id", "item_id"]), value=bad_ids)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_enrich_rejects_bad_ids_with_422_naming_the_field(client, field, value):
    cand = {"user_id": "U0001", "item_id": "SKU-0001", field: value}
    _assert_422_naming(_post_raw(client, "/enrich", {"candidates": [cand]}), field)


@given(n=st.integers(65, 3000))
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_enrich_oversized_candidate_lists_are_refused(client, n):
    r = _post_raw(client, "/enrich", {"candidates": [{"user_id": "u", "item_id": "i"}] * n})
    # over the configured cap (64): 413 with the cap; over the body limit: 413 too; never 5xx
    assert r.status_code == 413, (r.status_code, r.text[:300])


@given(flag=st.sampled_from(["features", "blurbs", "previews"]), value=nasty_scalars)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_enrich_rejects_non_boolean_flags(client, flag, value):
    if isinstance(value, bool):
        return
    r = _post_raw(client, "/enrich", {"candidates": [{"user_id": "u", "item_id": "i"}], flag: value})
    _assert_422_naming(r, flag)


@given(k=bad_k)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_recommend_and_search_reject_bad_k(client, k):
    _assert_422_naming(_post_raw(client, "/recommend", {"user_id": "U0001", "k": k}), "k")
    _assert_422_naming(_post_raw(client, "/search", {"query": "red shoes", "k": k}), "k")
    r = client.get("/items/SKU-0001/similar", params={"k": str(k)})
    _assert_422_naming(r, "k")


@given(history=st.one_of(st.just([]), st.lists(st.just("SKU-0001"), min_size=1001, max_size=1500),
                         st.lists(bad_ids, min_size=1, max_size=3), st.text(max_size=20),
                         nasty_scalars.filter(lambda v: not isinstance(v, list))))  # [1, 2] is a valid history
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_recommend_rejects_bad_histories(client, history):
    _assert_422_naming(_post_raw(client, "/recommend", {"history": history}), "history")


@given(query=st.one_of(st.just(""), st.integers(2001, 50_000).map(lambda n: "q" * n), nasty_scalars, st.none()))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_search_rejects_bad_queries(client, query):
    _assert_422_naming(_post_raw(client, "/search", {"query": query}), "query")


@given(body=st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=30) | st.integers(),
                         lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                         max_leaves=20),
       path=st.sampled_from(["/enrich", "/recommend", "/search"]))
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_json_bodies_never_5xx(client, body, path):
    r = _post_raw(client, path, body)
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert r.status_code in (200, 404, 413, 422), (r.status_code, r.text[:500])


@given(item=st.text(min_size=1, max_size=300), k=st.integers(-5, MAX_K + 5), user=st.text(max_size=300))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_ids_in_paths_and_queries_never_5xx(client, item, k, user):
    r = client.get("/items/x/similar".replace("x", _seg(item)), params={"k": k})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    r = client.get("/previews", params={"item_id": item, "user_id": user})
    assert r.status_code < 500, (r.status_code, r.text[:300])


def _seg(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


# ------------------------------------------------------------ regression tests
def test_regression_nan_in_body_was_a_500(client):
    """Bug: FastAPI's validation handler echoes the bad input, and NaN/Infinity cannot be written as
    JSON, so {"k": NaN} (or a NaN id) answered 500 instead of 422."""
    for path, body, field in [("/recommend", {"user_id": "U0001", "k": float("nan")}, "k"),
                              ("/enrich", {"candidates": [{"user_id": float("inf"), "item_id": "i"}]}, "user_id"),
                              ("/search", {"query": float("nan")}, "query"),
                              ("/recommend", float("-inf"), "body")]:
        r = _post_raw(client, path, body)
        _assert_422_naming(r, field)
        assert r.json()["detail"][0]["loc"][0] == "body"


def test_regression_string_422_details_broke_the_published_schema(client):
    """Bug: hand-made 422s had a string ``detail`` while the OpenAPI schema (HTTPValidationError)
    promises a list of {loc, msg, type}; schemathesis' response_schema_conformance caught it."""
    for r in [_post_raw(client, "/recommend", {}),
              _post_raw(client, "/search", {"query": "   "}),
              client.post("/search", files={"image": ("x.png", b"not an image", "image/png")})]:
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert isinstance(detail, list) and {"loc", "msg", "type"} <= set(detail[0]), detail


def test_regression_boolean_k_was_read_as_1(client):
    """Bug: pydantic's lax mode read {"k": true} as k=1 and answered 200."""
    _assert_422_naming(_post_raw(client, "/recommend", {"user_id": "U0001", "k": True}), "k")
    _assert_422_naming(_post_raw(client, "/search", {"query": "shoes", "k": True}), "k")
