"""The operator admin, through Django's test client (the browser test covers the same flows end to end)."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from calls.models import CallerIdentity, WebhookEvent
from embeddings.generation import generate_embeddings_batch
from embeddings.models import CacheStatsSample, PrewarmQuery
from embeddings.prewarm import cached_query_texts
from embeddings.statistics import collect_statistics
from memories.models import Memory
from memories.owners import default_owner
from memories.services import NewMemory, create_memory
from tests.factories import make_memory, make_staff

pytestmark = pytest.mark.django_db

CACHE_URL = "/admin/embedding-cache/"
CLEAR_URL = "/admin/embedding-cache/clear/"


@pytest.fixture
def operator(client):
    user = make_staff("operator", password="pw")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["embeddings", "memories", "calls"])
    )
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    user = make_staff("viewer", password="pw")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["embeddings", "memories", "calls"], codename__startswith="view"
        )
    )
    client.force_login(user)
    return user


def test_index_links_to_the_cache_page(client, operator):
    assert b'href="/admin/embedding-cache/"' in client.get("/admin/").content


def test_cache_page_shows_the_statistics(client, operator):
    generate_embeddings_batch(["alpha", "beta", "gamma"])
    generate_embeddings_batch(["alpha"])
    page = client.get(CACHE_URL).content.decode()
    stats = collect_statistics()
    assert f'id="stat-entries">{stats.entries}<' in page
    assert 'id="stat-hits">1<' in page and 'id="stat-misses">3<' in page
    assert 'id="stat-hit-rate">0.2500<' in page
    assert f'id="stat-provider-calls">{stats.provider_calls}<' in page
    assert stats.evictions_scope in page
    assert 'id="clear-cache"' in page


def test_viewing_the_cache_page_writes_nothing(client, operator):
    generate_embeddings_batch(["alpha"])
    client.get(CACHE_URL)
    assert not CacheStatsSample.objects.exists(), "samples come from the worker, not from page views"


def test_low_hit_rate_alert_is_shown(client, operator):
    generate_embeddings_batch([f"text {index}" for index in range(10)])
    assert 'id="alert-hit-rate"' in client.get(CACHE_URL).content.decode()


def test_clear_needs_confirmation_and_the_permission_and_is_logged(client, operator):
    generate_embeddings_batch(["alpha", "beta"])
    confirm = client.get(CLEAR_URL)
    assert confirm.status_code == 200 and b"2 entries" in confirm.content
    assert collect_statistics().entries == 2
    response = client.post(CLEAR_URL, follow=True)
    assert b"2 entries removed" in response.content
    assert collect_statistics().entries == 0
    entry = LogEntry.objects.get()
    assert entry.user == operator and "2 entries removed" in entry.change_message


def test_staff_without_the_permission_see_statistics_but_cannot_clear(client, viewer):
    generate_embeddings_batch(["alpha"])
    page = client.get(CACHE_URL)
    assert page.status_code == 200 and b'id="stat-entries">1<' in page.content
    assert b'id="clear-cache"' not in page.content
    assert client.get(CLEAR_URL).status_code == 403
    assert client.post(CLEAR_URL).status_code == 403
    assert collect_statistics().entries == 1


def test_clear_posts_need_csrf(operator):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post(CLEAR_URL).status_code == 403


def test_prewarm_now(client, operator):
    response = client.post("/admin/embedding-cache/prewarm/", follow=True)
    assert b"Prewarm: warmed 8, already cached 0, failed 0." in response.content
    assert len(cached_query_texts(PrewarmQuery.objects.values_list("text", flat=True))) == 8
    assert client.get("/admin/embedding-cache/prewarm/").status_code == 405


def test_prewarm_list_shows_what_is_cached_and_warms_selected(client, operator):
    generate_embeddings_batch(["CRM system"])
    page = client.get("/admin/embeddings/prewarmquery/").content.decode()
    assert page.count('alt="True"') == 1  # only "CRM system" is cached now
    ids = list(
        PrewarmQuery.objects.filter(text__in=["billing information", "contact details"]).values_list("pk", flat=True)
    )
    client.post("/admin/embeddings/prewarmquery/", {"action": "warm_selected", "_selected_action": ids})
    assert cached_query_texts(["billing information", "contact details"]) == {"billing information", "contact details"}
    client.post("/admin/embeddings/prewarmquery/", {"action": "disable_selected", "_selected_action": ids})
    assert PrewarmQuery.objects.filter(enabled=False).count() == 2


def test_memory_admin_filters_links_and_forget(client, operator):
    kept = create_memory(default_owner("alice"), NewMemory("Lives in Berlin")).memory
    make_memory("alice", "Lived in Paris", superseded_by=kept)
    create_memory(default_owner("bob"), NewMemory("Lives in Rome"))
    CallerIdentity.objects.create(phone_number="+16125550100", user_id="alice")
    listing = client.get("/admin/memories/memory/", {"superseded": "no", "q": "alice"}).content.decode()
    assert "Lives in Berlin" in listing and "Lived in Paris" not in listing and "Rome" not in listing
    assert "Lived in Paris" in client.get("/admin/memories/memory/", {"superseded": "yes"}).content.decode()
    ids = [kept.pk]
    confirm = client.post("/admin/memories/memory/", {"action": "forget_users", "_selected_action": ids})
    assert b"Forget these users?" in confirm.content and Memory.objects.filter(user_id="alice").exists()
    client.post("/admin/memories/memory/", {"action": "forget_users", "_selected_action": ids, "confirmed": "yes"})
    assert not Memory.objects.filter(user_id="alice").exists()
    assert not CallerIdentity.objects.filter(user_id="alice").exists()
    assert Memory.objects.filter(user_id="bob").count() == 1


def test_webhook_payload_is_pretty_with_secrets_masked_and_replay(client, operator):
    event = WebhookEvent.objects.create(
        event_type="post_call_transcription",
        conversation_id="conv_1",
        dedupe_key="post_call_transcription:conv_1",
        status="failed",
        attempts=5,
        body_sha256="0" * 64,
        payload={
            "type": "post_call_transcription",
            "data": {
                "conversation_id": "conv_1",
                "user_id": "usr_1",
                "transcript": [{"role": "user", "message": "I prefer email"}],
                "metadata": {"api_key": "sk-live-123", "authorization": "Bearer xyz"},
            },
        },
    )
    page = client.get(f"/admin/calls/webhookevent/{event.pk}/change/").content.decode()
    assert "I prefer email" in page and "sk-live-123" not in page and "Bearer xyz" not in page
    assert "&quot;conversation_id&quot;: &quot;conv_1&quot;" in page  # pretty-printed JSON
    response = client.post(
        "/admin/calls/webhookevent/", {"action": "replay_selected", "_selected_action": [event.pk]}, follow=True
    )
    assert b"Queued 1 events" in response.content
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("received", 0)
    assert client.get("/admin/calls/webhookevent/", {"status__exact": "received"}).status_code == 200
