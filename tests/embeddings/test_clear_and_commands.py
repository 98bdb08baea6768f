import json
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import CommandError, call_command

from embeddings.generation import cache_key_for, generate_embeddings_batch
from embeddings.models import PrewarmQuery
from embeddings.prewarm import cached_query_texts
from embeddings.statistics import collect_statistics

pytestmark = pytest.mark.django_db

SEEDED = {
    "user preferences",
    "recent conversation topics",
    "CRM system",
    "billing information",
    "contact details",
    "support history",
    "product interests",
    "communication preferences",
}


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_data_migration_seeds_the_eight_queries():
    assert set(PrewarmQuery.objects.values_list("text", flat=True)) == SEEDED


def test_prewarm_command_warms_enabled_queries_in_one_batch(fake_openai):
    PrewarmQuery.objects.filter(text="CRM system").update(enabled=False)
    output = run("prewarm_embeddings")
    assert "Warmed 7, already cached 0, failed 0." in output
    assert len(fake_openai.embedding_requests) == 1
    assert len(fake_openai.embedding_requests[0]["body"]["input"]) == 7
    assert cached_query_texts(SEEDED) == SEEDED - {"CRM system"}
    assert PrewarmQuery.objects.filter(enabled=True, last_warmed_at__isnull=True).count() == 0
    assert "Warmed 0, already cached 7, failed 0." in run("prewarm_embeddings")
    assert len(fake_openai.embedding_requests) == 1


def test_prewarm_dry_run_embeds_nothing(fake_openai):
    output = run("prewarm_embeddings", "--dry-run")
    assert "Would warm 8, already cached 0, failed 0." in output
    assert fake_openai.embedding_requests == []
    assert cached_query_texts(SEEDED) == set()


def test_prewarm_reports_failures(fake_openai):
    fake_openai.fail_next = [500]
    with pytest.raises(CommandError, match="HTTP 500"):
        run("prewarm_embeddings")


def test_clear_command_needs_confirmation_and_removes_embeddings_only():
    generate_embeddings_batch(["one", "two", "three"])
    caches["default"].set("session-like", "kept")
    with pytest.raises(CommandError, match="--yes"):
        run("clear_embedding_cache", interactive=False)
    assert collect_statistics().entries == 3
    assert "Removed 3 embedding entries." in run("clear_embedding_cache", "--yes")
    assert collect_statistics().entries == 0
    assert caches["default"].get("session-like") == "kept"


@pytest.mark.redis
def test_clear_leaves_unrelated_keys_in_the_same_redis():
    generate_embeddings_batch(["one", "two"])
    redis = caches["embeddings"].redis()
    redis.set("someone-elses-key", "kept")
    redis.set("mp:1:not-an-embedding", "kept")
    caches["embeddings"].set("other:thing", b"kept")  # same alias, same prefix, not an embedding key
    caches["default"].set("session-like", "kept")
    assert "Removed 2 embedding entries." in run("clear_embedding_cache", "--yes")
    assert redis.get("someone-elses-key") == b"kept"
    assert redis.get("mp:1:not-an-embedding") == b"kept"
    assert caches["embeddings"].get("other:thing") == b"kept"
    assert caches["default"].get("session-like") == "kept"
    assert caches["embeddings"].get(cache_key_for("one")) is None


def test_stats_command_table_and_json():
    generate_embeddings_batch(["alpha", "beta"])
    generate_embeddings_batch(["alpha"])
    table = run("embedding_cache_stats")
    assert "hit rate" in table and "33.33%" in table
    data = json.loads(run("embedding_cache_stats", "--json"))
    assert (data["hits"], data["misses"], data["entries"], data["provider_calls"]) == (1, 2, 2, 1)
    assert data["bytes"] == 2 * 6144


def test_commands_have_help():
    for command in ("prewarm_embeddings", "clear_embedding_cache", "embedding_cache_stats"):
        with pytest.raises(SystemExit):
            call_command(command, "--help", stdout=StringIO())
