"""The recommendation API: answers, bounds (422, never 500), 404, auth, and a live server."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.run_fixtures import HOSTILE

from slimrec.serve.app import create_app
from slimrec.serve.schemas import MAX_HISTORY, MAX_K, MAX_TEXT


def first_user(service) -> str:
    return service.catalog.user_raw[0]


def test_health_says_what_is_served(api, service):
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["student"] is True
    assert body["model"]["method"] == "slim" and body["model"]["backbone"] == "sasrec"
    assert body["items"] == service.catalog.n_items


def test_known_user_same_by_post_and_get(api, service):
    user = first_user(service)
    by_get = api.get(f"/users/{user}/recommendations", params={"k": 5}).json()
    by_post = api.post("/recommend", json={"user": user, "k": 5}).json()
    assert by_get == by_post
    assert by_get["user"] == user and len(by_get["items"]) == 5
    assert [it["rank"] for it in by_get["items"]] == [1, 2, 3, 4, 5]
    scores = [it["score"] for it in by_get["items"]]
    assert scores == sorted(scores, reverse=True)
    seen = {it["id"] for it in by_get["history"]}
    assert not seen & {it["id"] for it in by_get["items"]}  # history never recommended
    assert by_get["rationale"]["source"] == "run:student"
    assert len(by_get["rationale"]["steps"]) == 3
    assert by_get["history"] == [
        {"id": i, "raw_id": service.catalog.items[i].raw_id, "title": service.catalog.title(i)}
        for i in service.dataset.sequences[0].tolist()
    ]


def test_known_user_matches_the_offline_recommender(api, service, tiny_run):
    from slimrec.methods import recommend

    items, _ = recommend(service.fit.folder, service.dataset, [3], k=10)
    body = api.get(f"/users/{service.catalog.user_raw[3]}/recommendations").json()
    assert [it["id"] for it in body["items"]] == items[0].tolist()


def test_new_history_by_ids_raw_ids_and_titles(api, service):
    cat = service.catalog
    ids = [1, 2, 3]
    refs = [1, cat.items[2].raw_id, cat.title(3).upper()]
    body = api.post("/recommend", json={"history": refs, "k": 7}).json()
    assert [it["id"] for it in body["history"]] == ids
    assert len(body["items"]) == 7 and not {it["id"] for it in body["items"]} & set(ids)
    assert body["rationale"]["source"] == "student" and body["user"] is None
    again = api.post("/recommend", json={"history": ids, "k": 7}).json()
    assert again == body  # same history, same answer (greedy student, cached)


def test_hostile_titles_come_back_verbatim(api, service):
    hostile = next(it for it in service.catalog.items.values() if HOSTILE in it.title)
    found = api.get("/items", params={"q": "onerror"}).json()["items"]
    assert hostile.id in {it["id"] for it in found}
    body = api.post("/recommend", json={"history": [hostile.title], "k": 3}).json()
    assert body["history"][0]["title"] == hostile.title


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"history": [1], "k": 0}, "body.k", "greater than or equal to 1"),
        ({"history": [1], "k": MAX_K + 1}, "body.k", f"less than or equal to {MAX_K}"),
        ({"history": []}, "body.history", "at least 1 item"),
        ({"history": [1] * (MAX_HISTORY + 1)}, "body.history", f"at most {MAX_HISTORY}"),
        ({"history": ["x" * (MAX_TEXT + 1)]}, "body.history.0", f"at most {MAX_TEXT}"),
        ({"history": [0]}, "body.history.0", "greater than or equal to 1"),
        ({"history": [1, "no such item"]}, "body.history.1", "no item with id or title"),
        ({"history": [99999]}, "body.history.0", "no item with id 99999"),
        ({"history": [{"id": 1}]}, "body.history.0", ""),
        ({"user": "x", "history": [1]}, "body", "exactly one of `user` or `history`"),
        ({}, "body", "exactly one of"),
        ({"history": [1], "extra": 1}, "body.extra", "Extra inputs"),
    ],
)
def test_bad_requests_get_one_clear_422(api, body, field, words):
    r = api.post("/recommend", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert detail.startswith(field) and words in detail, detail


def test_bad_query_and_json_are_422_too(api):
    assert api.get("/users/x/recommendations", params={"k": "ten"}).status_code == 422
    assert api.get("/items", params={"q": "x" * (MAX_TEXT + 1)}).status_code == 422
    r = api.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


def test_unknown_user_is_404(api):
    r = api.get("/users/nobody/recommendations")
    assert r.status_code == 404 and r.json() == {"detail": "no user with id 'nobody'"}


def test_search_users_and_items(api, service):
    users = api.get("/users", params={"q": "user1", "limit": 3}).json()["users"]
    assert 1 <= len(users) <= 3 and all("user1" in u["id"] for u in users)
    items = api.get("/items", params={"q": "stapler", "limit": 5}).json()["items"]
    assert len(items) == 5 and all("stapler" in it["title"].lower() for it in items)


def test_page_and_schema_are_served(api):
    page = api.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "innerHTML" not in api.get("/static/app.js").text
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/recommend", "/users/{user}/recommendations", "/items", "/users", "/health"} <= set(
        paths
    )


def test_api_key_from_the_environment(service, monkeypatch, caplog):
    monkeypatch.setenv("SLIMREC_API_KEY", "s3cret-key")
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(service, close_service=False))
    assert client.get("/items").status_code == 401
    assert client.get("/items", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/items", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    ok = client.get("/items", headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200
    for open_path in ("/health", "/", "/openapi.json", "/static/app.js"):
        assert client.get(open_path).status_code == 200, open_path
    assert "s3cret-key" not in caplog.text


def test_live_server_concurrent_known_users(live_url, service):
    users = service.catalog.user_raw[:12]
    with httpx.Client(base_url=live_url, timeout=30) as c, ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda u: c.get(f"/users/{u}/recommendations", params={"k": 3}), users)
        )
    assert [a.status_code for a in answers] == [200] * len(users)
    assert [a.json()["user"] for a in answers] == users


def test_oversized_bodies_are_refused_with_413(api, live_url):
    big = b'{"history": [' + b'"' + b"x" * (2 << 20) + b'"]}'
    r = api.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 1,048,576 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced on the streamed bytes
        for _ in range(40):
            yield b" " * 65536

    r = httpx.post(f"{live_url}/recommend", content=chunks(), timeout=30)
    assert r.status_code == 413
    assert api.post("/recommend", json={"user": service_user(api), "k": 2}).status_code == 200


def service_user(api) -> str:
    return api.get("/users", params={"limit": 1}).json()["users"][0]["id"]


@pytest.mark.parametrize(
    "body", [{"history": [True]}, {"user": "x", "k": True}, {"history": [1.0]}]
)
def test_json_booleans_and_floats_are_not_ids_or_counts(api, body):
    r = api.post("/recommend", json=body)
    assert r.status_code == 422, r.text


def test_page_and_api_send_security_headers(api):
    page = api.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for r in (page, api.get("/health"), api.get("/items")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


def test_health_names_the_run_without_its_path(api, tiny_run):
    model = api.get("/health").json()["model"]
    assert model["run"] == tiny_run.name and "/" not in model["run"]


def named_item(service):
    return next(it for it in service.catalog.items.values() if HOSTILE not in it.title)


def with_suggestions(service, monkeypatch, user: int) -> None:
    """User ``user``'s rationale names one catalog item (in other case) and one unknown."""
    from slimrec.serve.explainer import Explanation

    step3 = f"Under Pens:\n- {named_item(service).title.upper()}\n- A pen nobody sells"
    steps = ("Likes pens.", "1. Pens", step3)
    text = f"Step 1: {steps[0]}\nStep 2:\n{steps[1]}\nStep 3:\n{step3}"
    monkeypatch.setitem(service.known, user, Explanation(text, steps, "run:student", True))


def test_step3_suggestions_come_grounded_in_the_catalog(api, service, monkeypatch):
    with_suggestions(service, monkeypatch, 0)
    body = api.get(f"/users/{first_user(service)}/recommendations").json()
    item = named_item(service)
    assert body["rationale"]["suggestions"] == [
        {"text": item.title.upper(), "item": {"id": item.id, "raw_id": item.raw_id,
                                              "title": item.title}},
        {"text": "A pen nobody sells", "item": None},
    ]  # fmt: skip
