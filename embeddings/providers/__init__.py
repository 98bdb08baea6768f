"""Embedding providers, chosen by the EMBEDDING_PROVIDER setting: a short name or a dotted class path."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from embeddings.providers.base import EmbeddingProvider

PROVIDER_ALIASES = {
    "local": "embeddings.providers.minilm.MiniLMProvider",
    "hashing": "embeddings.providers.hashing.LocalHashingProvider",
    "openai": "embeddings.providers.openai.OpenAIProvider",
    "openai-compatible": "embeddings.providers.openai.OpenAIProvider",
}


def build_provider(name: str | None = None, **overrides: object) -> EmbeddingProvider:
    """A provider built from settings; keyword overrides win (tests and the benchmarks use them)."""
    name = name or settings.EMBEDDING_PROVIDER
    provider_class = import_string(PROVIDER_ALIASES.get(name, name))
    options: dict[str, object] = {
        "model": settings.EMBEDDING_MODEL,
        "dimensions": settings.EMBEDDING_DIMENSIONS,
        "api_key": settings.OPENAI_API_KEY,
        "base_url": settings.OPENAI_BASE_URL,
        "encoding_format": settings.EMBEDDING_ENCODING_FORMAT,
        "request_timeout": settings.EMBEDDING_REQUEST_TIMEOUT,
        "total_timeout": settings.EMBEDDING_TOTAL_TIMEOUT,
        "max_retries": settings.EMBEDDING_MAX_RETRIES,
        "max_batch_inputs": settings.EMBEDDING_BATCH_MAX_INPUTS,
        "max_batch_tokens": settings.EMBEDDING_BATCH_MAX_TOKENS,
    }
    options.update(overrides)
    return provider_class(**options)


@cache
def get_provider() -> EmbeddingProvider:
    """The configured provider, built once per process (call `get_provider.cache_clear()` after changes)."""
    return build_provider()


__all__ = ["EmbeddingProvider", "build_provider", "get_provider"]
