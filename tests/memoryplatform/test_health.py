import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import PRODUCTION_STACK
from tests.settings import TEST_SECRET_KEY

pytestmark = pytest.mark.django_db


def test_healthz_is_public_and_trivial(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_stack_really_in_use(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ready"
    if PRODUCTION_STACK:
        assert data["stack"] == "production"
        assert data["database"]["engine"] == "postgresql"
        assert data["database"]["pgvector"] >= "0.8"
        assert data["cache"]["backend"] == "EmbeddingRedisCache"
    else:
        assert data["stack"] == "embedded"
        assert data["database"]["engine"] == "sqlite"
        assert data["cache"]["backend"] == "SQLiteLRUCache"
    assert data["embeddings"]["dimensions"] == 1536


def test_readyz_never_leaks_secrets(client, settings):
    body = client.get("/readyz").content.decode()
    for secret in (settings.SECRET_KEY, "memoryplatform:memoryplatform", "password"):
        assert secret not in body


@pytest.mark.redis
def test_readyz_stays_200_but_degraded_when_the_cache_is_down(client, settings):
    """The cache fails open: an instance without it still serves, so a load balancer must keep it."""
    from tests.conftest import free_port, redis_embedding_cache_config, reset_embedding_singletons

    settings.CACHES = {
        **settings.CACHES,
        "embeddings": redis_embedding_cache_config(f"redis://127.0.0.1:{free_port()}/0"),
    }
    reset_embedding_singletons()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["cache"]["ok"] is False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readyz_and_the_api_answer_json_503_without_the_database(client, settings):
    """The database behind a proxy that refuses connections: /readyz and the API say so in JSON, no HTML page."""
    from django.contrib.auth.models import User
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from testkit.tcp_proxy import TCPProxy

    token = Token.objects.create(user=User.objects.create_superuser("ops", password="pw"))
    database = connection.settings_dict
    with TCPProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)) as proxy:
        connection.close()
        saved = (database["HOST"], database["PORT"])
        database["HOST"], database["PORT"] = "127.0.0.1", proxy.port
        try:
            proxy.refuse()
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"]["ok"] is False
            api = client.get("/api/memories", headers={"Authorization": f"Token {token.key}"})
            assert api.status_code == 503
            assert api.json() == {"error": "The database is unavailable right now; try again shortly."}
            proxy.restore()
            assert client.get("/readyz").status_code == 200
        finally:
            connection.close()
            database["HOST"], database["PORT"] = saved


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    import importlib

    import memoryplatform.settings as project_settings

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setattr("memoryplatform.env.load_dotenv", lambda path: None)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        importlib.reload(project_settings)
    for weak in ("x", "a" * 80, "django-insecure-" + "0123456789abcdef" * 4):
        monkeypatch.setenv("SECRET_KEY", weak)
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is too weak for DEBUG=0"):
            importlib.reload(project_settings)
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("SECRET_KEY", "x")
    importlib.reload(project_settings)  # development may use anything
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    importlib.reload(project_settings)


def test_bad_environment_values_fail_with_the_variable_name(monkeypatch):
    from memoryplatform.env import env_bool, env_int

    monkeypatch.setenv("EMBEDDING_CACHE_TTL", "a day")
    with pytest.raises(ImproperlyConfigured, match="EMBEDDING_CACHE_TTL must be an integer"):
        env_int("EMBEDDING_CACHE_TTL", 0)
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be a boolean"):
        env_bool("DEBUG")


def test_check_deploy_is_clean_with_production_settings(private_redis_factory):
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SECURE_")},
        "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
        "READ_DOTENV": "0",
        "DEBUG": "0",
        "SECRET_KEY": TEST_SECRET_KEY,
        "ALLOWED_HOSTS": "memory.example.com",
    }
    if PRODUCTION_STACK:  # a Redis configured as the cache wants it (docker-compose.yml's flags), not the machine's
        env["REDIS_URL"] = private_redis_factory("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru").url
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
