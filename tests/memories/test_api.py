"""The operators' DRF API: token or session auth, staff only."""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from memories.models import Memory, MemoryLink
from testkit.elevenlabs import TOOL_SECRET, TOOL_URL
from tests.factories import make_memory, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    operator = make_staff("operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    return client


def test_needs_staff_credentials():
    anonymous = APIClient()
    assert anonymous.get("/api/memories").status_code == 401
    viewer = User.objects.create_user("viewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer).key}")
    assert client.get("/api/memories").status_code == 403


def test_session_auth_works_for_staff(client):
    client.force_login(make_staff("staffer"))
    assert client.get("/api/memories").status_code == 200


def test_create_dedupes_and_says_so_with_the_status(api):
    first = api.post("/api/memories", {"user_id": "alice", "text": "I am allergic to peanuts"}, format="json")
    assert first.status_code == 201
    body = first.json()
    assert body["sector"] == "semantic" and body["user_id"] == "alice"
    assert body["embedding_model"] == "local-hash-v1"
    again = api.post("/api/memories", {"user_id": "alice", "text": "i am allergic to peanuts"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["access_count"] == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"user_id": "alice"}, "text: This field is required."),
        ({"user_id": "alice", "text": "   "}, "text: This field may not be blank."),
        ({"text": "hello"}, "user_id: This field is required."),
        ({"user_id": "alice", "text": "hi", "sector": "gossip"}, 'sector: "gossip" is not a valid choice.'),
        ({"user_id": "alice", "text": 12}, "text: must be a string"),
    ],
)
def test_create_validation_is_one_readable_line(api, payload, message):
    response = api.post("/api/memories", payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == message


def test_list_filters_by_user_sector_and_superseded(api):
    keep = make_memory("alice", "likes jazz", sector="semantic")
    make_memory("alice", "went to a concert", sector="episodic")
    make_memory("bob", "likes jazz", sector="semantic")
    make_memory("alice", "liked rock", sector="semantic", superseded_by=keep)
    results = api.get("/api/memories", {"user_id": "alice", "sector": "semantic", "superseded": "false"}).json()
    assert [item["text"] for item in results["results"]] == ["likes jazz"]
    assert results["count"] == 1
    assert api.get("/api/memories", {"user_id": "alice", "q": "CONCERT"}).json()["count"] == 1


def test_retrieve_update_re_embeds_and_delete(api):
    memory = make_memory("alice", "likes tea")
    assert api.get(f"/api/memories/{memory.pk}").json()["text"] == "likes tea"
    response = api.patch(f"/api/memories/{memory.pk}", {"text": "likes green tea", "salience": 0.8}, format="json")
    assert response.status_code == 200
    memory.refresh_from_db()
    assert (memory.text, memory.salience, memory.embedding_model) == ("likes green tea", 0.8, "local-hash-v1")
    assert api.patch(f"/api/memories/{memory.pk}", {"salience": 3}, format="json").status_code == 400
    assert api.delete(f"/api/memories/{memory.pk}").status_code == 204
    assert api.get(f"/api/memories/{memory.pk}").status_code == 404


def test_links_of_a_memory(api):
    first, second = make_memory("alice", "one"), make_memory("alice", "two")
    MemoryLink.objects.create(from_memory=first, to_memory=second, weight=0.7, user_id="alice")
    assert api.get(f"/api/memories/{second.pk}/links").json()["results"] == [
        {"from_memory": first.pk, "to_memory": second.pk, "weight": 0.7, "reason": "similar"}
    ]


def test_search_equals_the_tool(api, client, call_secrets):
    api.post("/api/memories", {"user_id": "alice", "text": "My invoice from March was wrong"}, format="json")
    api.post("/api/memories", {"user_id": "alice", "text": "I have a dog called Rex"}, format="json")
    body = {"query": "invoice problem", "user_id": "alice", "limit": 1}
    operator = api.post("/api/memories/search", body, format="json")
    tool = client.post(TOOL_URL, body, content_type="application/json", headers={"X-Memory-Secret": TOOL_SECRET})
    assert operator.status_code == tool.status_code == 200
    assert [m["id"] for m in operator.json()["memories"]] == [m["id"] for m in tool.json()["memories"]]
    assert "search;dur=" in operator["Server-Timing"]
    assert api.post("/api/memories/search", {"user_id": "alice"}, format="json").json()["detail"] == (
        "query: This field is required."
    )


def test_forget_user_endpoint_returns_counts(api):
    a1, a2 = make_memory("alice", "one"), make_memory("alice", "two")
    make_memory("bob", "three")
    MemoryLink.objects.create(from_memory=a1, to_memory=a2, weight=0.5, user_id="alice")
    response = api.delete("/api/users/alice/memories")
    assert response.status_code == 200
    assert response.json()["deleted"]["memories"] == 2
    assert response.json()["deleted"]["links"] == 1
    assert Memory.objects.filter(user_id="alice").count() == 0
    assert Memory.objects.filter(user_id="bob").count() == 1
    assert (
        api.post("/api/memories/search", {"query": "one", "user_id": "alice"}, format="json").json()["memories"] == []
    )


def test_openapi_schema_swagger_and_redoc(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/memories", "/api/memories/search", "/api/users/{user_id}/memories"):
        assert path in text
    assert admin_client.get("/api/docs/").status_code == 200
    assert admin_client.get("/api/redoc/").status_code == 200


def test_schema_and_docs_are_for_staff_and_document_the_elevenlabs_endpoints(client, admin_client):
    for path in ("/api/schema/", "/api/docs/", "/api/redoc/"):
        assert client.get(path).status_code in (401, 403), path
    schema = admin_client.get("/api/schema/?format=json").json()
    for path in (
        "/tools/memory-query",
        "/webhooks/elevenlabs/conversation-initiation",
        "/webhooks/elevenlabs/post-call",
    ):
        assert "post" in schema["paths"][path]
    assert schema["components"]["securitySchemes"]["memorySecret"]["name"] == "X-Memory-Secret"
    listing = schema["paths"]["/api/memories"]["get"]
    assert {"400", "401", "403", "429", "503"} <= set(listing["responses"])
    assert {parameter["name"] for parameter in listing["parameters"]} >= {
        "sector",
        "superseded",
        "created_after",
        "ordering",
    }


def test_filters_refuse_what_they_do_not_understand(api):
    make_memory("alice", "one", sector="episodic")
    assert api.get("/api/memories?sector=episodic").json()["count"] == 1
    for query, field in (
        ("sector=bogus", "sector"),
        ("colour=red", "colour"),
        ("created_after=yesterday", "created_after"),
        ("created_after=", "created_after"),
        ("superseded=maybe", "superseded"),
        ("ordering=text", "ordering"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("user_id=a&user_id=b", "user_id"),
    ):
        response = api.get(f"/api/memories?{query}")
        assert response.status_code == 400, query
        assert response.json()["detail"].startswith(f"{field}: ") and field in response.json()["errors"], query


def test_time_filters_ordering_and_pagination(api):
    from datetime import timedelta

    from django.utils import timezone

    old = make_memory("alice", "old news", age_days=10)
    new = make_memory("alice", "fresh news")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert [m["id"] for m in api.get("/api/memories", {"created_after": since}).json()["results"]] == [new.pk]
    assert [m["id"] for m in api.get("/api/memories", {"created_before": since}).json()["results"]] == [old.pk]
    ascending = api.get("/api/memories", {"ordering": "created_at"}).json()["results"]
    assert [m["id"] for m in ascending] == [old.pk, new.pk]
    page = api.get("/api/memories", {"limit": 1, "offset": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["previous"]


def test_a_users_memories_can_be_read_beside_forgetting_them(api):
    make_memory("alice", "one")
    make_memory("bob", "two")
    response = api.get("/api/users/alice/memories")
    assert response.status_code == 200
    assert [m["text"] for m in response.json()["results"]] == ["one"]
    assert api.get("/api/users/alice/memories?sector=bogus").status_code == 400


def test_links_are_paginated(api):
    first = make_memory("alice", "one")
    for index in range(3):
        MemoryLink.objects.create(from_memory=first, to_memory=make_memory("alice", f"n{index}"), user_id="alice")
    page = api.get(f"/api/memories/{first.pk}/links?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2


def test_unknown_api_paths_are_a_json_404(api, client):
    for path in ("/api/memories/", "/api/nothing", "/api/memories/999999"):
        response = api.get(path)
        assert response.status_code == 404 and "detail" in response.json(), path
    assert client.get("/nothing-here").get("Content-Type", "").startswith("text/html")


def test_operators_are_throttled_with_a_429(api, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"operator_api": "3/minute"})
    statuses = [api.get("/api/memories").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    throttled = api.get("/api/memories")
    assert throttled.json()["detail"].startswith("Request was throttled") and int(throttled["Retry-After"]) > 0
