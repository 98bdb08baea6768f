"""The operators' DRF API: token or session auth, staff only."""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from memories.models import Memory, MemoryLink
from testkit.elevenlabs import TOOL_SECRET, TOOL_URL
from tests.factories import make_memory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    operator = User.objects.create_user("operator", is_staff=True)
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
    client.force_login(User.objects.create_user("staffer", is_staff=True))
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
    assert response.json()["error"] == message


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
    assert api.get(f"/api/memories/{second.pk}/links").json() == [
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
    assert api.post("/api/memories/search", {"user_id": "alice"}, format="json").json()["error"] == (
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
