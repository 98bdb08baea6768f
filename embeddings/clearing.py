"""Clearing the embedding cache: the one function the admin, the command and the API call."""

import logging

from embeddings.cache import get_embedding_cache

logger = logging.getLogger(__name__)


def clear_embedding_cache(actor: str) -> int:
    """Delete every embedding entry (other keys survive) and return how many; raises if the cache is down."""
    removed = get_embedding_cache().clear()
    logger.info("embedding cache cleared", extra={"removed": removed, "actor": actor})
    return removed
