"""Shared fixtures: which stack this run is on, a clean embedding cache per test, the fake OpenAI server."""

import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from testkit import elevenlabs
from testkit.fake_openai import FakeOpenAIServer
from testkit.processes import Gunicorn, Worker, free_port
from tests.settings import TEST_SECRET_KEY

PRODUCTION_STACK = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
    if not PRODUCTION_STACK:
        return
    down = [
        name
        for name, url, port in (
            ("PostgreSQL", os.environ.get("DATABASE_URL", ""), 5432),
            ("Redis", os.environ.get("REDIS_URL", ""), 6379),
        )
        if not url or not _reachable(url, port)
    ]
    if down:
        reason = f"production stack NOT TESTED: {', '.join(down)} unreachable or not configured"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.exit(f"{reason} (REQUIRE_SERVICES=1 makes this a failure)", returncode=3)
        pytest.exit(f"SKIPPED: {reason}; run scripts/install-services", returncode=0)


def pytest_report_header(config):
    stack = "production (PostgreSQL + pgvector + Redis)" if PRODUCTION_STACK else "embedded (SQLite + local LRU)"
    return f"stack: {stack}"


def pytest_collection_modifyitems(config, items):
    """Each test runs on the stacks it is about: `redis`/`postgres` ones on the production stack only, `embedded`
    ones (they start the embedded stack themselves, whatever the suite's) on the embedded stack only."""
    selected, deselected = [], []
    for item in items:
        if PRODUCTION_STACK:
            elsewhere = item.get_closest_marker("embedded") is not None
        else:
            elsewhere = item.get_closest_marker("redis") is not None or item.get_closest_marker("postgres") is not None
        (deselected if elsewhere else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(autouse=True)
def fresh_space_lookups():
    """Which space a secret or an agent belongs to is remembered per process (calls.spaces): not across tests."""
    from calls.spaces import forget_lookups

    forget_lookups()
    yield
    forget_lookups()


@pytest.fixture(autouse=True)
def fresh_lexical_statistics():
    """A user's corpus statistics and word counts (memories.text_search) and copies of their memories
    (memories.caller_cache) are kept per process: not across tests, whose users share names."""
    from memories.caller_cache import callers, query_lexemes
    from memories.text_search import forget_statistics

    for forget in (forget_statistics, callers.reset, query_lexemes.cache_clear):
        forget()
    yield
    for forget in (forget_statistics, callers.reset, query_lexemes.cache_clear):
        forget()


def reset_embedding_singletons() -> None:
    from embeddings.cache import get_embedding_cache
    from embeddings.providers import get_provider

    get_provider.cache_clear()
    get_embedding_cache.cache_clear()


@pytest.fixture(autouse=True)
def clean_embedding_cache(settings, tmp_path):
    """Every test starts with an empty embedding cache and zeroed counters, on whichever stack is running."""
    if PRODUCTION_STACK:
        from django.core.cache import caches

        from embeddings.cache_backends.redis import discard_pending_counts

        caches["embeddings"].redis().flushdb()
        discard_pending_counts()
    else:
        caches_setting = {alias: dict(config) for alias, config in settings.CACHES.items()}
        caches_setting["embeddings"]["LOCATION"] = str(tmp_path / "embedding-cache.sqlite3")
        settings.CACHES = caches_setting
    reset_embedding_singletons()
    yield
    reset_embedding_singletons()


@pytest.fixture
def call_secrets(settings):
    """The three ElevenLabs integrations configured with testkit.elevenlabs' secrets."""
    for name, value in elevenlabs.secret_settings().items():
        setattr(settings, name, value)
    settings.ELEVENLABS_TOOL_SECRET_HEADER = settings.ELEVENLABS_INITIATION_SECRET_HEADER = "X-Memory-Secret"


@pytest.fixture
def fake_openai(settings):
    """The embedding provider pointed at a local fake OpenAI server, through the real `openai` client."""
    server = FakeOpenAIServer(dimensions=settings.EMBEDDING_DIMENSIONS).start()
    settings.EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_API_KEY = "sk-test"
    settings.EMBEDDING_MODEL = "text-embedding-3-small"
    settings.EMBEDDING_MAX_RETRIES = 0
    reset_embedding_singletons()
    yield server
    server.stop()


class PrivateRedis:
    """A redis-server of our own, for tests that stop Redis or need a tiny maxmemory."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.args = args
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/install-services)"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _reachable(self.url, self.port):
                return self
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis_factory():
    servers: list[PrivateRedis] = []

    def start(*args: str) -> PrivateRedis:
        server = PrivateRedis(*args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def redis_embedding_cache_config(url: str, **options) -> dict:
    config = {
        "BACKEND": "embeddings.cache_backends.redis.EmbeddingRedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "mp",
        "TIMEOUT": settings.EMBEDDING_CACHE_TTL or None,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.25,
            "SOCKET_TIMEOUT": 0.25,
            "SERIALIZER": "embeddings.cache_backends.serializers.RawBytesSerializer",
        },
    }
    config.update(options)
    return config


def database_url() -> str:
    """This test run's database as a URL, for processes the tests start."""
    from django.db import connection

    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    return (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )


# Settings a test may have changed that a process it starts must share.
SHARED_SETTINGS = (
    "EMBEDDING_PROVIDER",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSIONS",
    "EMBEDDING_MAX_RETRIES",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "TOOL_TIME_BUDGET_SECONDS",
    "WEBHOOK_RETRY_BASE_SECONDS",
    *elevenlabs.secret_settings(),
)


def app_env(settings, **overrides: object) -> dict[str, str]:
    """The environment of a server or worker process on this test run's database, cache and settings."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
        "READ_DOTENV": "0",
        "DEBUG": "0",
        "SECRET_KEY": TEST_SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url(),
        "TASKS_IN_PROCESS_WORKER": "0",
        "DATA_DIR": str(settings.DATA_DIR),
    }
    for name in SHARED_SETTINGS:
        value = getattr(settings, name)
        env[name] = ",".join(value) if isinstance(value, list) else str(value)
    if not PRODUCTION_STACK:
        env["EMBEDDING_CACHE_PATH"] = settings.CACHES["embeddings"]["LOCATION"]
    env.update({name: str(value) for name, value in overrides.items()})
    return env


@pytest.fixture
def live_gunicorn(transactional_db, settings):
    """A real gunicorn process on this stack's test database (the test must use transactional_db)."""
    server = Gunicorn({"WEB_WORKERS": "1", **app_env(settings)}).start()
    yield server
    server.stop()


@pytest.fixture
def worker_processes(transactional_db, settings, tmp_path):
    """Start `run_worker` processes on this test's database: `start(**settings)`; all stopped afterwards."""
    started: list[Worker] = []

    def start(**overrides: object) -> Worker:
        heartbeat = str(tmp_path / f"heartbeat-{len(started)}.json")
        worker = Worker(app_env(settings, **overrides), heartbeat).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
