"""How fast the admin's "Embedding cache" page is with many cached entries (target: under 300 ms at 100k).

    .venv/bin/python bench/admin_cache_page.py              # 100,000 entries, both backends
    .venv/bin/python bench/admin_cache_page.py --tiny       # 1,000 entries; what the test suite runs

Fills the embedded SQLite LRU cache and a private redis-server (started here, no maxmemory, so nothing is
evicted while filling) with real-size entries (1,536 float32 = 6,144 bytes), then renders the page through
Django's test client as a logged-in superuser and times it, and `collect_statistics()` alone.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.entries, args.renders = 1000, 3

    data_dir = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    port = free_port()
    redis_server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdout=subprocess.DEVNULL,
    )
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "READ_DOTENV": "0",
            "DEBUG": "1",
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "ALLOWED_HOSTS": "testserver",
            "DATA_DIR": str(data_dir),
            "TASKS_IN_PROCESS_WORKER": "0",
            "EMBEDDING_CACHE_MAX_ENTRIES": str(args.entries * 2),
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    try:
        time.sleep(0.5)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import override_settings

        from embeddings.cache import get_embedding_cache
        from embeddings.keys import embedding_cache_key
        from embeddings.statistics import collect_statistics

        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import User

        user = User.objects.create_superuser("bench", password="bench")
        value = os.urandom(6144)
        keys = [embedding_cache_key("local", "local-hash-v1", 1536, f"text {index}") for index in range(args.entries)]

        def redis_cache(dedicated: bool) -> dict:
            return {
                **settings.CACHES,
                "embeddings": {
                    "BACKEND": "embeddings.cache_backends.redis.EmbeddingRedisCache",
                    "LOCATION": f"redis://127.0.0.1:{port}/0",
                    "KEY_PREFIX": "mp",
                    "TIMEOUT": None,
                    "OPTIONS": {
                        "SERIALIZER": "embeddings.cache_backends.serializers.RawBytesSerializer",
                        "DEDICATED_DB": dedicated,
                    },
                },
            }

        rows = []
        variants = (
            ("embedded (SQLite LRU)", settings.CACHES),
            ("production (Redis, shared database: SCAN)", redis_cache(False)),
            ("production (Redis, dedicated database: DBSIZE)", redis_cache(True)),
        )
        for label, caches_setting in variants:
            with override_settings(CACHES=caches_setting):
                get_embedding_cache.cache_clear()
                from django.core.cache import caches

                backend = caches["embeddings"]
                started = time.perf_counter()
                for start in range(0, len(keys), 2000):
                    backend.set_many({key: value for key in keys[start : start + 2000]}, timeout=None)
                fill_seconds = time.perf_counter() - started
                client = Client()
                client.force_login(user)
                client.get("/admin/embedding-cache/")  # first render compiles templates
                render, stats_only = [], []
                for _ in range(args.renders):
                    started = time.perf_counter()
                    response = client.get("/admin/embedding-cache/")
                    render.append(1000 * (time.perf_counter() - started))
                    assert response.status_code == 200, response.status_code
                    started = time.perf_counter()
                    entries = collect_statistics().entries
                    stats_only.append(1000 * (time.perf_counter() - started))
                assert entries == args.entries, (entries, args.entries)
                rows.append((label, fill_seconds, render, stats_only))
        print()
        print(f"{args.entries:,} cached entries of 6,144 bytes; {args.renders} renders of /admin/embedding-cache/")
        print()
        print("| backend | page p50 / p95 ms | statistics alone p50 / p95 ms | filled in |")
        print("|---|---|---|---|")
        for label, fill_seconds, render, stats_only in rows:
            print(
                f"| {label} | {statistics.median(render):.1f} / {percentile(render, 0.95):.1f} | "
                f"{statistics.median(stats_only):.1f} / {percentile(stats_only, 0.95):.1f} | {fill_seconds:.0f} s |"
            )
    finally:
        redis_server.terminate()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
