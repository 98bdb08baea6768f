"""System checks: the Redis eviction policy, and a configuration that can actually embed."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from embeddings.cache import CACHE_ALIAS, embedding_backend_name
from embeddings.cache_backends.redis import EmbeddingRedisCache

GOOD_POLICIES = ("allkeys-lru", "allkeys-lfu")


@register("embeddings")
def check_provider_settings(app_configs=None, **kwargs):
    errors = []
    if settings.EMBEDDING_ENCODING_FORMAT not in ("base64", "float"):
        errors.append(
            Error(
                f"EMBEDDING_ENCODING_FORMAT is {settings.EMBEDDING_ENCODING_FORMAT!r}",
                hint="Use 'base64' (OpenAI) or 'float' (servers that reject base64).",
                id="embeddings.E001",
            )
        )
    try:
        from embeddings.providers import build_provider

        build_provider()
    except (ImportError, ImproperlyConfigured, TypeError, ValueError) as error:
        errors.append(
            Error(
                f"the embedding provider cannot be built: {error}",
                hint="Check EMBEDDING_PROVIDER.",
                id="embeddings.E002",
            )
        )
    if CACHE_ALIAS not in settings.CACHES:
        errors.append(Error(f"CACHES has no {CACHE_ALIAS!r} alias", id="embeddings.E003"))
    return errors


@register("embeddings", "caches")
def check_redis_eviction_policy(app_configs=None, **kwargs):
    """Warn when the embedding Redis would not evict (noeviction, volatile-*) or has no memory limit."""
    from django.core.cache import caches

    if embedding_backend_name() != EmbeddingRedisCache.__name__:
        return []
    try:
        memory = caches[CACHE_ALIAS].redis().info("memory")
    except Exception as error:
        return [
            Warning(
                f"cannot read the embedding Redis' eviction policy: {type(error).__name__}: {error}",
                hint="Embeddings will be served without the cache until Redis is reachable.",
                id="embeddings.W003",
            )
        ]
    warnings = []
    policy = memory.get("maxmemory_policy", "")
    if policy not in GOOD_POLICIES:
        warnings.append(
            Warning(
                f"the embedding Redis evicts with maxmemory-policy {policy!r}",
                hint="Set maxmemory-policy allkeys-lru (or allkeys-lfu) so the cache evicts instead of failing "
                "writes when full.",
                id="embeddings.W001",
            )
        )
    if int(memory.get("maxmemory", 0)) == 0:
        warnings.append(
            Warning(
                "the embedding Redis has maxmemory 0 (no limit)",
                hint="Set maxmemory (for example 512mb) so LRU eviction has a bound to work against.",
                id="embeddings.W002",
            )
        )
    return warnings
