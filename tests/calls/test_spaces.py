"""Memory spaces: two tenants on one deployment, probed from every side for leaks.

The default space is opened by the environment's secrets; "acme" by a secret issued in the admin, and its agent is
registered to it. The same phone number, the same user id string and the same words go into both; nothing of one
may come back in the other, through the tools, the webhooks, links, dedupe, the operator API or the admin.
"""

import asyncio
import json

import pytest
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calls.custom_llm import admission
from calls.models import Agent, CallerIdentity, SpaceSecret, WebhookEvent, secret_digest
from calls.spaces import forget_lookups
from memories.models import Memory, MemoryLink, Space
from memories.owners import DEFAULT_SPACE_ID, Owner
from memories.services import NewMemory, create_memory
from testkit.elevenlabs import (
    INITIATION_SECRET,
    INITIATION_URL,
    LLM_SECRET,
    POST_CALL_URL,
    REMEMBER_URL,
    TOOL_SECRET,
    TOOL_URL,
    encode,
    signed_headers,
    transcription_payload,
)
from testkit.tasks import drain_task_queue
from tests.factories import make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("call_secrets")]

PHONE = "+16125550100"
ACME_AGENT = "agent_acme_0001"
DEFAULT_AGENT = "agent_default_0001"


@pytest.fixture
def acme():
    """The second space, its agent and its secret (the secret as shown once)."""
    space = Space.objects.create(slug="acme", name="Acme")
    Agent.objects.create(agent_id=ACME_AGENT, space=space)
    Agent.objects.create(agent_id=DEFAULT_AGENT, space_id=DEFAULT_SPACE_ID)
    _, secret = SpaceSecret.issue(space)
    space.secret = secret
    return space


def tool(client, body: dict, secret: str, url: str = TOOL_URL):
    return client.post(url, data=json.dumps(body), content_type="application/json", headers={"X-Memory-Secret": secret})


def initiation(client, secret: str, agent_id: str = ACME_AGENT, phone: str = PHONE):
    body = {"caller_id": phone, "agent_id": agent_id, "called_number": "+18005550199", "call_sid": "CA1"}
    return tool(client, body, secret, INITIATION_URL)


def texts(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [memory["text"] for memory in response.json()["memories"]]


def test_a_secret_is_stored_hashed_and_shown_once(acme):
    row = SpaceSecret.objects.get(space=acme)
    assert acme.secret.startswith("msk_") and len(acme.secret) > 40
    assert row.digest == secret_digest(acme.secret) and acme.secret not in (row.digest, row.prefix)
    assert acme.secret.startswith(row.prefix) and len(row.prefix) < 16
    assert not SpaceSecret.objects.filter(digest=acme.secret).exists()


def test_the_same_phone_number_is_two_users_in_two_spaces(client, acme):
    home = initiation(client, INITIATION_SECRET, agent_id=DEFAULT_AGENT).json()
    away = initiation(client, acme.secret).json()
    home_user, away_user = home["dynamic_variables"]["user_id"], away["dynamic_variables"]["user_id"]
    assert home_user and away_user and home_user != away_user
    assert away["dynamic_variables"]["caller_known"] is False  # known in the default space, not in acme
    assert set(CallerIdentity.objects.values_list("space_id", "phone_number", "user_id")) == {
        (DEFAULT_SPACE_ID, PHONE, home_user),
        (acme.pk, PHONE, away_user),
    }
    create_memory(Owner(DEFAULT_SPACE_ID, home_user), NewMemory("My account number is 4417"))
    assert "4417" not in initiation(client, acme.secret).json()["dynamic_variables"]["memory_context"]
    assert (
        "4417"
        in initiation(client, INITIATION_SECRET, agent_id=DEFAULT_AGENT).json()["dynamic_variables"]["memory_context"]
    )
    # The tool by phone number maps to each space's own user.
    asked = {"query": "account number", "system__caller_id": PHONE}
    assert texts(tool(client, {**asked, "system__agent_id": ACME_AGENT}, acme.secret)) == []
    assert texts(tool(client, asked, TOOL_SECRET)) == ["My account number is 4417"]


def test_the_same_user_id_and_the_same_words_stay_apart(client, acme):
    home, away = Owner(DEFAULT_SPACE_ID, "alice"), Owner(acme.pk, "alice")
    first = create_memory(home, NewMemory("I live in Lyon and my dog is called Rex"))
    second = create_memory(away, NewMemory("I live in Lyon and my dog is called Rex"))
    assert first.created and second.created and first.memory.pk != second.memory.pk  # no dedupe across spaces
    create_memory(away, NewMemory("I live in Lyon with my dog Rex"))  # similar: linked within acme only
    create_memory(home, NewMemory("My home secret is the blue door"))
    for link in MemoryLink.objects.select_related("from_memory", "to_memory"):
        assert link.from_memory.space_id == link.to_memory.space_id == link.space_id
    assert MemoryLink.objects.filter(space=acme).exists()

    away_answer = texts(tool(client, {"query": "home secret door", "user_id": "alice", "limit": 20}, acme.secret))
    assert "My home secret is the blue door" not in away_answer and len(away_answer) == 2
    home_answer = texts(tool(client, {"query": "home secret door", "user_id": "alice", "limit": 20}, TOOL_SECRET))
    assert "My home secret is the blue door" in home_answer and "I live in Lyon with my dog Rex" not in home_answer


def test_remembered_in_one_space_is_found_only_there(client, acme):
    remembered = tool(client, {"user_id": "bob", "text": "My new address is 5 Rue Royale"}, acme.secret, REMEMBER_URL)
    assert remembered.status_code == 200 and remembered.json()["already_known"] is False
    assert Memory.objects.get(pk=remembered.json()["id"]).space_id == acme.pk
    assert texts(tool(client, {"query": "new address", "user_id": "bob"}, acme.secret)) == [
        "My new address is 5 Rue Royale"
    ]
    assert texts(tool(client, {"query": "new address", "user_id": "bob"}, TOOL_SECRET)) == []


@pytest.mark.parametrize(
    ("secret", "agent", "status", "words"),
    [
        ("acme", DEFAULT_AGENT, 403, "another memory space"),  # a registered agent, the wrong space's secret
        ("environment", ACME_AGENT, 403, "another memory space"),
        ("acme", "agent_nobody_knows", 403, "Unknown agent"),  # acme takes registered agents only
        ("revoked", ACME_AGENT, 401, "secret"),
        ("wrong", ACME_AGENT, 401, "secret"),
        ("acme", ACME_AGENT, 200, ""),
        ("acme", None, 200, ""),  # no agent named: the secret decides
        ("environment", "agent_nobody_knows", 200, ""),  # the default space accepts unregistered agents
    ],
)
def test_a_request_is_refused_unless_its_secret_and_agent_agree(client, acme, secret, agent, status, words):
    _, revoked = SpaceSecret.issue(acme)
    SpaceSecret.objects.filter(digest=secret_digest(revoked)).update(revoked_at="2026-11-01T00:00:00Z")
    offered = {"acme": acme.secret, "environment": TOOL_SECRET, "revoked": revoked, "wrong": "msk_guess"}[secret]
    body = {"query": "anything", "user_id": "alice", **({"system__agent_id": agent} if agent else {})}
    response = tool(client, body, offered)
    assert response.status_code == status, response.content
    if words:
        assert words in response.json()["error"]
        assert len(response.json()["error"]) < 80  # one sentence the agent could read out


def test_the_default_space_can_stop_taking_unregistered_agents(client, acme):
    Space.objects.filter(pk=DEFAULT_SPACE_ID).update(accepts_unregistered_agents=False)
    forget_lookups()
    body = {"query": "anything", "user_id": "alice", "system__agent_id": "agent_nobody_knows"}
    assert tool(client, body, TOOL_SECRET).status_code == 403
    assert tool(client, {**body, "system__agent_id": DEFAULT_AGENT}, TOOL_SECRET).status_code == 200
    refused = initiation(client, INITIATION_SECRET, agent_id="agent_nobody_knows")
    assert refused.status_code == 403 and "Unknown agent" in refused.json()["error"]


def post_call(client, agent_id: str, conversation_id: str, phone: str = PHONE):
    payload = transcription_payload(conversation_id=conversation_id, phone=phone)
    payload["data"]["agent_id"] = agent_id
    body = encode(payload)
    response = client.post(POST_CALL_URL, data=body, content_type="application/json", headers=signed_headers(body))
    assert response.status_code == 200
    drain_task_queue()
    return WebhookEvent.objects.get(conversation_id=conversation_id)


@pytest.mark.django_db(transaction=True)
def test_a_finished_call_is_remembered_in_its_agents_space(client, acme):
    away = post_call(client, ACME_AGENT, "conv_acme")
    home = post_call(client, DEFAULT_AGENT, "conv_home")
    assert (away.space_id, away.status, home.space_id, home.status) == (acme.pk, "processed", 1, "processed")
    assert away.user_id != home.user_id  # the same phone number: one user per space
    assert Memory.objects.filter(space=acme, user_id=away.user_id).count() == away.memories_created > 0
    assert not Memory.objects.filter(space=acme, user_id=home.user_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_call_of_an_agent_without_a_space_waits_for_the_operator_and_is_not_lost(client, acme):
    Space.objects.filter(pk=DEFAULT_SPACE_ID).update(accepts_unregistered_agents=False)
    forget_lookups()
    event = post_call(client, "agent_new_hire", "conv_new")
    assert event.status == "failed" and event.space_id is None
    assert "agent_new_hire is registered to no memory space" in event.last_error and "replay" in event.last_error
    assert not Memory.objects.exists()

    Agent.objects.create(agent_id="agent_new_hire", space=acme)
    forget_lookups()
    from calls.tasks import replay_event

    assert replay_event(event)
    drain_task_queue()
    event.refresh_from_db()
    assert (event.status, event.space_id) == ("processed", acme.pk)
    assert Memory.objects.filter(space=acme).count() == event.memories_created > 0


def api_for(person) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=person).key}")
    return client


def test_the_operator_api_shows_staff_only_their_spaces(acme):
    home = create_memory(Owner(DEFAULT_SPACE_ID, "alice"), NewMemory("Home: allergic to peanuts")).memory
    away = create_memory(Owner(acme.pk, "alice"), NewMemory("Acme: allergic to shellfish")).memory
    api = api_for(make_staff("acme_operator", spaces=(acme.pk,)))

    listed = api.get("/api/memories").json()["results"]
    assert [item["id"] for item in listed] == [away.pk] and listed[0]["space"] == "acme"
    assert api.get(f"/api/memories/{home.pk}").status_code == 404
    assert api.delete(f"/api/memories/{home.pk}").status_code == 404
    assert api.get("/api/memories", {"space": "default"}).json()["results"] == []
    searched = api.post("/api/memories/search", {"user_id": "alice", "query": "allergic", "space": "acme"}, "json")
    assert [item["text"] for item in searched.json()["memories"]] == ["Acme: allergic to shellfish"]
    refused = api.post("/api/memories/search", {"user_id": "alice", "query": "allergic"}, "json")  # default space
    assert refused.status_code == 404 and "no memory space" in refused.json()["detail"].lower()
    assert api.post("/api/memories", {"user_id": "alice", "text": "x", "space": "default"}, "json").status_code == 404
    created = api.post("/api/memories", {"user_id": "alice", "text": "Acme: prefers SMS", "space": "acme"}, "json")
    assert created.status_code == 201 and Memory.objects.get(pk=created.json()["id"]).space_id == acme.pk

    assert api.get("/api/users/alice/memories").status_code == 404
    assert api.get("/api/users/alice/export", {"space": "default"}).status_code == 404
    export = api.get("/api/users/alice/export", {"space": "acme"}).json()
    assert export["space"] == "acme" and "peanuts" not in json.dumps(export)
    forgotten = api.delete("/api/users/alice/memories?space=acme").json()
    assert forgotten["deleted"]["memories"] == 2
    assert Memory.objects.filter(pk=home.pk).exists()  # the default space's alice is another person

    superuser = api_for(make_staff("root", spaces=(), is_superuser=True))
    assert {item["space"] for item in superuser.get("/api/memories").json()["results"]} == {"default"}
    assert superuser.get("/api/users/alice/memories", {"space": "nowhere"}).status_code == 404


def test_the_admin_shows_staff_only_their_spaces(client, acme):
    home = create_memory(Owner(DEFAULT_SPACE_ID, "alice"), NewMemory("Home: allergic to peanuts")).memory
    create_memory(Owner(acme.pk, "alice"), NewMemory("Acme: allergic to shellfish"))
    person = make_staff("acme_viewer", password="pw", spaces=(acme.pk,))
    person.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(person)

    listing = client.get("/admin/memories/memory/").content.decode()
    assert "shellfish" in listing and "peanuts" not in listing
    page = client.get(f"/admin/memories/memory/{home.pk}/change/", follow=True).content.decode()
    assert "peanuts" not in page
    for url in ("/admin/calls/calleridentity/", "/admin/calls/webhookevent/", "/admin/memories/memorylink/"):
        assert client.get(url).status_code == 200
    spaces = client.get("/admin/memories/space/").content.decode()
    assert "Acme" in spaces and ">Default<" not in spaces
    assert acme.secret not in client.get(f"/admin/memories/space/{acme.pk}/change/").content.decode()


def test_staff_limited_to_spaces_cannot_see_or_choose_a_spaces_staff(client, acme):
    outsider = make_staff("elsewhere_operator", password="pw", spaces=(DEFAULT_SPACE_ID,))
    person = make_staff("acme_manager", password="pw", spaces=(acme.pk,))
    person.user_permissions.add(*Permission.objects.filter(codename__in=["view_space", "change_space"]))
    client.force_login(person)

    page = client.get(f"/admin/memories/space/{acme.pk}/change/").content.decode()
    assert page.count("acme_manager") >= 1 and "elsewhere_operator" not in page
    form = {"name": acme.name, "slug": acme.slug, "payload_retention_days": "", "extraction_model": ""}
    response = client.post(f"/admin/memories/space/{acme.pk}/change/", {**form, "staff": [outsider.pk, person.pk]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(acme.staff.values_list("username", flat=True)) == {"acme_manager"}


def test_issuing_a_secret_in_the_admin_shows_it_once(admin_client, acme):
    response = admin_client.post(
        "/admin/memories/space/", {"action": "issue_secret", "_selected_action": [acme.pk]}, follow=True
    )
    shown = [message.message for message in response.context["messages"]]
    assert len(shown) == 1 and "msk_" in shown[0]
    secret = "msk_" + shown[0].split("msk_")[1].split()[0]
    assert SpaceSecret.objects.filter(digest=secret_digest(secret), space=acme).exists()
    assert secret not in admin_client.get(f"/admin/memories/space/{acme.pk}/change/").content.decode()
    forget_lookups()
    assert tool(admin_client, {"query": "anything", "user_id": "alice"}, secret).status_code == 200


@pytest.mark.django_db(transaction=True)  # the lookup runs in a worker thread, on its own connection
@pytest.mark.parametrize(
    ("key", "agent", "space_or_status"),
    [
        (LLM_SECRET, "", DEFAULT_SPACE_ID),
        ("acme", ACME_AGENT, "acme"),
        (LLM_SECRET, ACME_AGENT, 403),
        ("acme", DEFAULT_AGENT, 403),
        ("nothing", "", 401),
    ],
)
def test_a_custom_llm_turn_is_admitted_to_its_agents_space(acme, key, agent, space_or_status):
    key = acme.secret if key == "acme" else key
    request = RequestFactory().post("/v1/chat/completions", HTTP_AUTHORIZATION=f"Bearer {key}")
    system = "You are Ava." + (f"\nmemory_agent_id: {agent}" if agent else "")
    body = {"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]}
    admitted = asyncio.run(admission(request, body))
    if isinstance(space_or_status, int) and space_or_status >= 400:
        assert admitted.refused and admitted.status == space_or_status
    else:
        assert admitted.space_id == (acme.pk if space_or_status == "acme" else space_or_status)


@pytest.mark.django_db(transaction=True)
def test_a_space_extracts_with_its_own_model_and_keeps_payloads_its_own_time(client, acme, fake_openai, settings):
    from datetime import timedelta

    from django.utils import timezone

    from calls.retention import erase_old_payloads

    settings.EXTRACTION_LLM_MODEL = "deployment-model"
    Space.objects.filter(pk=acme.pk).update(extraction_model="acme-model", payload_retention_days=1)
    away = post_call(client, ACME_AGENT, "conv_acme")
    home = post_call(client, DEFAULT_AGENT, "conv_home")
    assert (away.status, home.status) == ("processed", "processed")
    assert sorted(request["body"]["model"] for request in fake_openai.chat_requests) == [
        "acme-model",
        "deployment-model",
    ]

    settings.WEBHOOK_PAYLOAD_RETENTION_DAYS = 30
    WebhookEvent.objects.update(processed_at=timezone.now() - timedelta(days=2))
    assert erase_old_payloads() == 1  # acme keeps a day, the default space thirty
    away.refresh_from_db(), home.refresh_from_db()
    assert away.payload is None and away.payload_erased_at is not None and home.payload is not None
    assert erase_old_payloads(days=1) == 1  # --days overrides every space's


@pytest.mark.django_db(transaction=True)
def test_another_workspaces_webhook_secret_writes_only_into_its_own_space(client, acme, settings):
    settings.ELEVENLABS_WEBHOOK_SPACE_SECRETS = ["acme:wsec_acme_workspace"]

    def signed_post(agent_id: str, conversation_id: str) -> WebhookEvent:
        payload = transcription_payload(conversation_id=conversation_id)
        payload["data"]["agent_id"] = agent_id
        body = encode(payload)
        headers = signed_headers(body, secret="wsec_acme_workspace")
        assert (
            client.post(POST_CALL_URL, data=body, content_type="application/json", headers=headers).status_code == 200
        )
        drain_task_queue()
        return WebhookEvent.objects.get(conversation_id=conversation_id)

    unregistered = signed_post("agent_acme_not_registered_yet", "conv_acme_own")
    assert (unregistered.space_id, unregistered.status) == (acme.pk, "processed")
    forged = signed_post(DEFAULT_AGENT, "conv_forged")  # a default-space agent, signed by acme's workspace
    assert (forged.space_id, forged.status) == (acme.pk, "failed") and "another space" in forged.last_error
    assert not Memory.objects.filter(space_id=DEFAULT_SPACE_ID).exists()
    assert Memory.objects.filter(space=acme).count() == unregistered.memories_created > 0


def test_a_malformed_space_bound_webhook_secret_stops_the_start(settings):
    from django.core.checks import run_checks

    settings.ELEVENLABS_WEBHOOK_SPACE_SECRETS = ["acme:ok", "no-colon-here", ":missing-slug"]
    errors = [message for message in run_checks() if message.id == "calls.E001"]
    assert [error.msg.split()[2] for error in errors] == ["2", "3"]


def test_staff_of_one_space_cannot_write_into_another_through_the_admin(client, acme):
    person = make_staff("acme_operator", password="pw", spaces=(acme.pk,))
    every = Permission.objects.filter(content_type__app_label__in=["calls", "memories"])
    person.user_permissions.add(*every.exclude(codename="access_all_spaces"))
    client.force_login(person)
    form = {"space": str(DEFAULT_SPACE_ID), "phone_number": PHONE, "user_id": "victim", "calls": "0"}
    form.update({"last_seen_at_0": "2026-11-26", "last_seen_at_1": "10:00:00"})
    response = client.post("/admin/calls/calleridentity/add/", form)
    assert response.status_code == 200 and not CallerIdentity.objects.exists()  # the form refused the space
    memory = {"space": str(DEFAULT_SPACE_ID), "user_id": "victim", "text": "Planted", "kind": "note", "salience": "0.5"}
    memory.update({"sector": "", "occurred_at_0": "2026-11-26", "occurred_at_1": "10:00:00", "metadata": "{}"})
    assert client.post("/admin/memories/memory/add/", memory).status_code == 200 and not Memory.objects.exists()
    assert ">Default<" not in response.content.decode()
    # Agents move calls between spaces, links name memories: both are for staff who see every space.
    assert client.get("/admin/calls/agent/add/").status_code == 403
    assert client.get("/admin/memories/memorylink/add/").status_code == 403
    assert (
        client.post("/admin/calls/agent/add/", {"agent_id": "agent_default_legacy", "space": acme.pk}).status_code
        == 403
    )
    assert not Agent.objects.filter(agent_id="agent_default_legacy").exists()


@pytest.mark.parametrize("space", ["\x00", "a b", "x" * 65, "défaut"])
def test_a_space_name_that_cannot_exist_is_a_clear_4xx(space):
    api = api_for(make_staff("root", spaces=(), is_superuser=True))
    for response in (
        api.get("/api/users/alice/export", {"space": space}),
        api.delete(f"/api/users/alice/memories?space={space}"),
        api.post("/api/memories/search", {"user_id": "alice", "query": "x", "space": space}, "json"),
    ):
        assert response.status_code in (400, 404) and "space" in response.json()["detail"].lower()


@pytest.mark.parametrize("messages", [5, None, True, "hello", {"role": "user"}])
def test_a_custom_llm_request_with_odd_messages_is_a_400_not_a_500(messages):
    from calls.custom_llm import complete

    request = RequestFactory().post("/v1/chat/completions", HTTP_AUTHORIZATION=f"Bearer {LLM_SECRET}")
    outcome = asyncio.run(complete(request, json.dumps({"model": "m", "messages": messages}).encode()))
    assert outcome.status == 400 and "messages" in outcome.document["error"]["message"]
    anonymous = RequestFactory().post("/v1/chat/completions")
    assert asyncio.run(complete(anonymous, json.dumps({"model": "m", "messages": messages}).encode())).status == 401


def test_a_custom_llm_turn_whose_space_cannot_be_looked_up_is_a_503(monkeypatch):
    from django.db import OperationalError

    from calls import custom_llm

    def database_down(request, policy, agent_id):
        raise OperationalError("connection refused")

    monkeypatch.setattr(custom_llm, "admit", database_down)
    request = RequestFactory().post("/v1/chat/completions", HTTP_AUTHORIZATION="Bearer msk_some_space_secret")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    outcome = asyncio.run(custom_llm.complete(request, json.dumps(body).encode()))
    assert outcome.status == 503 and outcome.document["error"]["type"] == "server_error"
