"""The admin writes through the services, and every action asks for the permission its effect needs."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType

from calls.models import CallerIdentity, WebhookEvent
from embeddings.generation import generate_embedding
from memories.models import Memory
from memories.owners import DEFAULT_SPACE_ID, default_owner
from memories.services import NewMemory, create_memory, forget_user
from tests.factories import make_staff

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/memories/memory/add/"


def staff(client, name: str, codename_prefixes: tuple[str, ...]) -> User:
    user = make_staff(name, password="pw")
    permissions = Permission.objects.filter(content_type__app_label__in=["embeddings", "memories", "calls"])
    user.user_permissions.add(*[p for p in permissions if p.codename.startswith(codename_prefixes)])
    client.force_login(user)
    return user


def failed_event(conversation_id: str = "conv_1") -> WebhookEvent:
    return WebhookEvent.objects.create(
        event_type="post_call_transcription",
        conversation_id=conversation_id,
        dedupe_key=f"post_call_transcription:{conversation_id}",
        space_id=DEFAULT_SPACE_ID,
        status="failed",
        attempts=5,
        body_sha256="0" * 64,
        payload={"type": "post_call_transcription", "data": {"conversation_id": conversation_id}},
    )


def add_form(**values) -> dict:
    form = {
        "space": str(DEFAULT_SPACE_ID),
        "user_id": "alice",
        "text": "Prefers to be called in the morning",
        "kind": "note",
        "sector": "",
        "salience": "0.5",
        "occurred_at_0": "2026-11-20",
        "occurred_at_1": "10:00:00",
        "metadata": "{}",
    }
    form.update(values)
    return form


def test_view_only_staff_are_offered_no_action_and_posting_one_changes_nothing(client):
    staff(client, "viewer", ("view",))
    memory = create_memory(default_owner("alice"), NewMemory("Lives in Berlin")).memory
    event = failed_event()
    listing = client.get("/admin/memories/memory/").content.decode()
    assert "Lives in Berlin" in listing and 'value="forget_users"' not in listing
    assert 'value="replay_selected"' not in client.get("/admin/calls/webhookevent/").content.decode()
    assert 'value="warm_selected"' not in client.get("/admin/embeddings/prewarmquery/").content.decode()

    forged = {"action": "forget_users", "_selected_action": [memory.pk], "confirmed": "yes"}
    client.post("/admin/memories/memory/", forged)
    client.post("/admin/calls/webhookevent/", {"action": "replay_selected", "_selected_action": [event.pk]})
    assert Memory.objects.filter(user_id="alice").count() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("failed", 5)
    assert client.get(ADD_URL).status_code == 403
    assert client.post(f"/admin/memories/memory/{memory.pk}/change/", {"text": "x"}).status_code == 403


def test_forget_needs_the_delete_permission_not_change(client):
    staff(client, "editor", ("view", "change", "add"))
    memory = create_memory(default_owner("alice"), NewMemory("Lives in Berlin")).memory
    assert 'value="forget_users"' not in client.get("/admin/memories/memory/").content.decode()
    client.post(
        "/admin/memories/memory/", {"action": "forget_users", "_selected_action": [memory.pk], "confirmed": "yes"}
    )
    assert Memory.objects.filter(user_id="alice").exists()
    failed_event()
    listing = client.get("/admin/calls/webhookevent/").content.decode()
    assert 'value="replay_selected"' in listing  # replay is a change, which this editor may make


def test_superuser_is_offered_every_action(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    create_memory(default_owner("alice"), NewMemory("Lives in Berlin"))
    failed_event()
    assert 'value="forget_users"' in client.get("/admin/memories/memory/").content.decode()
    assert 'value="replay_selected"' in client.get("/admin/calls/webhookevent/").content.decode()


def test_adding_a_memory_embeds_guesses_the_sector_and_links(client):
    staff(client, "editor", ("view", "change", "add"))
    create_memory(default_owner("alice"), NewMemory("Prefers to be called in the morning, before nine"))
    response = client.post(ADD_URL, add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    memory = Memory.objects.get(user_id="alice", text="Prefers to be called in the morning")
    assert memory.embedding_model and memory.sector
    assert memory.embedding == pytest.approx(list(generate_embedding(memory.text)), abs=1e-6)
    assert response["Location"].endswith(f"/admin/memories/memory/{memory.pk}/change/") or response["Location"]
    entry = LogEntry.objects.get(object_id=str(memory.pk))
    assert entry.is_addition() and entry.user.username == "editor"


def test_adding_a_repeat_reinforces_the_original_and_says_so(client):
    staff(client, "editor", ("view", "change", "add"))
    original = create_memory(default_owner("alice"), NewMemory("Prefers to be called in the morning")).memory
    response = client.post(ADD_URL, add_form(text="prefers to be called   in the MORNING"), follow=True)
    assert response.status_code == 200
    assert f"This repeats memory {original.pk} of alice" in response.content.decode()
    original.refresh_from_db()
    assert Memory.objects.filter(user_id="alice").count() == 1 and original.access_count == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"user_id": ""}, "This field is required."),
        ({"text": "   "}, "This field is required."),
        ({"text": "x" * 20_000}, "the limit is"),
        ({"sector": "gossip"}, "Select a valid choice."),
        ({"salience": "7"}, "memory_salience_0_1"),
        ({"metadata": "{not json"}, "Enter a valid JSON."),
    ],
)
def test_adding_bad_input_is_a_form_error(client, values, message):
    staff(client, "editor", ("view", "change", "add"))
    response = client.post(ADD_URL, add_form(**values))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Memory.objects.exists()


def test_a_provider_failure_is_a_form_error_not_a_500(client, fake_openai):
    staff(client, "editor", ("view", "change", "add"))
    fake_openai.fail_next = [503]
    response = client.post(ADD_URL, add_form())
    assert response.status_code == 200
    assert "could not be embedded now" in response.content.decode()
    assert not Memory.objects.exists()
    assert client.post(ADD_URL, add_form()).status_code == 302  # the provider is back


def test_editing_the_text_re_embeds_and_a_duplicate_is_refused(client):
    staff(client, "editor", ("view", "change", "add"))
    memory = create_memory(default_owner("alice"), NewMemory("Lives in Berlin")).memory
    create_memory(default_owner("alice"), NewMemory("Works as a nurse at the city hospital"))
    url = f"/admin/memories/memory/{memory.pk}/change/"
    response = client.post(url, {"text": "Lives in Lyon", "sector": memory.sector, "salience": "0.5", "metadata": "{}"})
    assert response.status_code == 302
    memory.refresh_from_db()
    assert memory.text == "Lives in Lyon"
    assert memory.embedding == pytest.approx(list(generate_embedding("Lives in Lyon")), abs=1e-6)

    twin = {
        "text": "works as a nurse at the city hospital",
        "sector": memory.sector,
        "salience": "0.5",
        "metadata": "{}",
    }
    refused = client.post(url, twin)
    assert refused.status_code == 200 and "already says this" in refused.content.decode()
    memory.refresh_from_db()
    assert memory.text == "Lives in Lyon"


def test_forgetting_a_user_removes_their_names_from_the_admin_history(client):
    user = staff(client, "editor", ("view", "change", "add", "delete"))
    memory = create_memory(default_owner("alice"), NewMemory("Lives in Berlin")).memory
    identity = CallerIdentity.objects.create(phone_number="+16125550100", user_id="alice")
    other = create_memory(default_owner("bob"), NewMemory("Lives in Rome")).memory
    for obj in (memory, identity, other):
        LogEntry.objects.log_actions(user.pk, [obj], CHANGE, change_message="[{'changed': {'fields': ['text']}}]")
    client.post(
        f"/admin/memories/memory/{memory.pk}/change/",
        {"text": "Lives in Berlin Mitte", "sector": memory.sector, "salience": "0.5", "metadata": "{}"},
        follow=True,
    )

    forget_user(default_owner("alice"))

    memory_type = ContentType.objects.get_for_model(Memory)
    about_alice = LogEntry.objects.filter(object_id__in=[str(memory.pk), str(identity.pk)])
    assert about_alice.count() == 3 and set(about_alice.values_list("object_repr", flat=True)) == {"(forgotten)"}
    assert not LogEntry.objects.filter(object_repr__contains="Berlin").exists()
    assert not LogEntry.objects.filter(object_repr__contains="+16125550100").exists()
    assert LogEntry.objects.get(content_type=memory_type, object_id=str(other.pk)).object_repr == "bob: Lives in Rome"
    history = client.get("/admin/").content.decode()
    assert "Berlin" not in history and "(forgotten)" in history
