import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.cache import caches

from embeddings.checks import check_redis_eviction_policy
from embeddings.generation import generate_embeddings_batch
from embeddings.statistics import collect_statistics
from tests.conftest import PRODUCTION_STACK, redis_embedding_cache_config, reset_embedding_singletons
from tests.factories import make_staff

pytestmark = pytest.mark.django_db


def test_metrics_need_staff_or_token(client, settings):
    settings.METRICS_TOKENS = ["metrics-secret"]
    for url in ("/metrics", "/metrics/embedding-cache"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer metrics-secret"}).status_code == 200
    client.force_login(User.objects.create_user("viewer", is_staff=False))
    assert client.get("/metrics/embedding-cache").status_code == 401
    client.force_login(make_staff("operator"))
    assert client.get("/metrics/embedding-cache").status_code == 200


def test_no_token_configured_means_no_token_access(client, settings):
    settings.METRICS_TOKENS = []
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_json_statistics(admin_client):
    generate_embeddings_batch(["alpha", "beta", "alpha"])
    generate_embeddings_batch(["beta"])
    data = admin_client.get("/metrics/embedding-cache").json()
    assert (data["hits"], data["misses"], data["hit_rate"], data["entries"]) == (1, 2, 0.3333, 2)
    assert data["provider_calls"] == 1
    assert data["latency_buckets"]["+Inf"] == 1
    assert data["policy"]


def test_prometheus_text(admin_client):
    generate_embeddings_batch(["alpha", "beta"])
    generate_embeddings_batch(["alpha"])
    body = admin_client.get("/metrics").content.decode()
    for line in (
        "embedding_cache_size 2.0",
        "embedding_cache_hits_total 1.0",
        "embedding_cache_misses_total 2.0",
        "embedding_api_calls_total 1.0",
        'embedding_generation_latency_seconds_bucket{le="+Inf"} 1.0',
        "embedding_generation_latency_seconds_count 1.0",
    ):
        assert line in body, line
    assert "embedding_cache_hit_rate 0.3333" in body
    assert "embedding_cache_evictions_total{scope=" in body


def test_statistics_agree_across_processes(tmp_path):
    """Another process embeds through the same shared cache; this process sees its hits, misses and entries."""
    generate_embeddings_batch(["shared one"])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    if not PRODUCTION_STACK:
        env["EMBEDDING_CACHE_PATH"] = django_settings.CACHES["embeddings"]["LOCATION"]
    script = (
        "import django; django.setup();"
        "from embeddings.generation import generate_embeddings_batch as g;"
        "g(['shared one', 'shared two']); g(['shared two'])"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=Path(__file__).parents[2], timeout=60)
    stats = collect_statistics()
    assert (stats.hits, stats.misses, stats.entries, stats.provider_calls) == (2, 2, 2, 2)


@pytest.mark.redis
def test_redis_policy_check_warns_until_allkeys_lru_with_maxmemory(settings, private_redis_factory):
    """On a private redis-server: the suite never reconfigures the machine's shared Redis."""
    server = private_redis_factory("--maxmemory-policy", "noeviction", "--maxmemory", "0")
    settings.CACHES = {**settings.CACHES, "embeddings": redis_embedding_cache_config(server.url)}
    reset_embedding_singletons()
    redis = caches["embeddings"].redis()
    ids = {warning.id for warning in check_redis_eviction_policy()}
    assert ids == {"embeddings.W001", "embeddings.W002"}
    redis.config_set("maxmemory-policy", "allkeys-lru")
    redis.config_set("maxmemory", "256mb")
    assert check_redis_eviction_policy() == []
    redis.config_set("maxmemory-policy", "volatile-lru")
    assert [warning.id for warning in check_redis_eviction_policy()] == ["embeddings.W001"]


def test_redis_check_is_silent_on_the_local_cache(settings, tmp_path):
    settings.CACHES = {
        **settings.CACHES,
        "embeddings": {
            "BACKEND": "embeddings.cache_backends.sqlite_lru.SQLiteLRUCache",
            "LOCATION": str(tmp_path / "cache.sqlite3"),
        },
    }
    assert check_redis_eviction_policy() == []


def test_provider_check_rejects_a_bad_encoding_format(settings):
    from embeddings.checks import check_provider_settings

    settings.EMBEDDING_ENCODING_FORMAT = "binary"
    assert "embeddings.E001" in {error.id for error in check_provider_settings()}


def test_prometheus_text_has_the_memory_side_and_every_alert_names_a_served_metric(admin_client):
    import re
    from pathlib import Path

    import yaml

    from calls.models import WebhookEvent
    from memories.models import UserVectorIndex

    for index, status in enumerate(["received", "failed", "failed", "processed"]):
        WebhookEvent.objects.create(
            event_type="post_call_transcription", dedupe_key=f"k{index}", body_sha256="0" * 64, status=status
        )
    UserVectorIndex.objects.create(user_id="whale", index_name="memory_user_hnsw_x", status="failed")
    body = admin_client.get("/metrics").content.decode()
    for line in (
        'memory_webhook_events{status="failed"} 2.0',
        'memory_webhook_events{status="received"} 1.0',
        'memory_webhook_events{status="retrying"} 0.0',
        'memory_user_vector_indexes{status="failed"} 1.0',
        'memory_user_vector_indexes{status="ready"} 0.0',
        'memory_webhook_events{status="quarantined"} 0.0',
        'task_workers{state="running"} 0.0',
        'background_tasks{status="READY"} 0.0',
    ):
        assert line in body, line
    assert re.search(r"^memory_webhook_oldest_unfinished_seconds \d", body, re.MULTILINE)
    assert re.search(r"^task_worker_last_heartbeat_age_seconds ", body, re.MULTILINE)

    served = set(re.findall(r"^# TYPE (\w+) ", body, re.MULTILINE))
    served |= {f"{name}_total" for name in served} | {f"{name}_bucket" for name in served}
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) == 8
    for expression in expressions:
        names = set(re.findall(r"\b((?:embedding|memory|task)_\w+)", expression))
        assert names and names <= served, (expression, names - served)
