"""Liveness and readiness probes: JSON, no auth, and nothing secret in the output."""

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from embeddings.cache import embedding_backend_name, get_embedding_cache
from embeddings.providers import get_provider


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; touches nothing else."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Can this instance serve? The database is required (503 without it); the embedding cache fails open, so
    without it the instance serves, slower: "degraded", still 200, so a load balancer keeps it. Says which stack
    each part really runs on."""
    database = _probe(_check_database)
    cache = _probe(_check_cache)
    database["engine"] = connection.vendor
    cache["backend"] = embedding_backend_name()
    provider = get_provider()
    ready = database["ok"]
    on_postgres, on_redis = connection.vendor == "postgresql", "Redis" in cache["backend"]
    stack = {(False, False): "embedded", (True, True): "production"}.get((on_postgres, on_redis), "mixed")
    status = "not ready" if not ready else "ready" if cache["ok"] else "degraded"
    return JsonResponse(
        {
            "status": status,
            "stack": stack,
            "database": database,
            "cache": cache,
            "embeddings": {"provider": provider.name, "model": provider.model, "dimensions": provider.dimensions},
        },
        status=200 if ready else 503,
    )


def _probe(check) -> dict:
    started = time.perf_counter()
    try:
        details = check()
        ok, error = True, ""
    except Exception as exc:
        details, ok, error = {}, False, type(exc).__name__
    result = {"ok": ok, "ms": round(1000 * (time.perf_counter() - started), 2), **details}
    if error:
        result["error"] = error
    return result


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
        details: dict = {}
        if connection.vendor == "postgresql":
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            details["pgvector"] = row[0] if row else None
    return details


def _check_cache() -> dict:
    info = get_embedding_cache().info()
    return {"entries": info["entries"], "policy": info["policy"]}
