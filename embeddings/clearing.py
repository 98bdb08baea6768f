"""Clearing the embedding cache, wholly (the admin, the command and the API call this) or a user's texts."""

import logging
from collections.abc import Iterable

from embeddings.cache import get_embedding_cache
from embeddings.generation import cache_key_for
from embeddings.providers import get_provider

logger = logging.getLogger(__name__)


def clear_embedding_cache(actor: str) -> int:
    """Delete every embedding entry (other keys survive) and return how many; raises if the cache is down."""
    removed = get_embedding_cache().clear()
    logger.info("embedding cache cleared", extra={"removed": removed, "actor": actor})
    return removed


def forget_cached_texts(texts: Iterable[str]) -> int:
    """Delete the cached embeddings of these texts under the current model; returns how many were cached.
    Raises if the cache is down. (Entries of a model used before a re-embed have expired or been evicted: they
    are never read again.)"""
    provider = get_provider()
    return get_embedding_cache().forget({cache_key_for(text, provider) for text in texts})
