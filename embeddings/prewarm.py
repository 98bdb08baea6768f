"""Warming the embeddings of the prewarm queries: one batch through the normal cache path."""

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.utils import timezone

from embeddings.errors import EmbeddingError
from embeddings.generation import cached_embeddings, generate_embeddings_batch
from embeddings.models import PrewarmQuery

logger = logging.getLogger(__name__)


@dataclass
class PrewarmSummary:
    warmed: list[str] = field(default_factory=list)
    already_cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would warm" if self.dry_run else "warmed"
        return f"{verb} {len(self.warmed)}, already cached {len(self.already_cached)}, failed {len(self.failed)}"


def prewarmed_vectors() -> tuple[dict[str, np.ndarray], list[str]]:
    """(the cached embeddings of the enabled prewarm queries by text, the enabled queries not cached now).

    Reads the cache only: for paths that must never wait on a provider (the conversation initiation)."""
    texts = list(PrewarmQuery.objects.filter(enabled=True).values_list("text", flat=True))
    vectors = cached_embeddings(texts)
    return vectors, [text for text in texts if text not in vectors]


def cached_query_texts(texts: Iterable[str]) -> set[str]:
    """Which of `texts` have an embedding in the cache right now (not counted as hits or misses)."""
    return set(cached_embeddings(texts))


def prewarm_queries(queries: Iterable[PrewarmQuery] | None = None, dry_run: bool = False) -> PrewarmSummary:
    """Embed every given (default: every enabled) prewarm query that is not cached yet, in one batch."""
    if queries is None:
        queries = PrewarmQuery.objects.filter(enabled=True)
    queries = list(queries)
    summary = PrewarmSummary(dry_run=dry_run)
    cached = cached_query_texts(query.text for query in queries)
    summary.already_cached = [query.text for query in queries if query.text in cached]
    to_warm = [query for query in queries if query.text not in cached]
    summary.warmed = [query.text for query in to_warm]
    if dry_run or not to_warm:
        return summary
    try:
        generate_embeddings_batch([query.text for query in to_warm])
    except EmbeddingError as error:
        summary.failed = {query.text: str(error) for query in to_warm}
        summary.warmed = []
        logger.warning("prewarm failed", extra={"queries": len(to_warm), "error": str(error)})
        return summary
    PrewarmQuery.objects.filter(pk__in=[query.pk for query in queries]).update(last_warmed_at=timezone.now())
    logger.info("prewarm done", extra={"warmed": len(summary.warmed), "already_cached": len(summary.already_cached)})
    return summary


def prewarm_in_background() -> threading.Thread:
    """Run prewarm_queries in a daemon thread (start-up prewarm must never delay a request)."""

    def run() -> None:
        from django.db import connections

        try:
            prewarm_queries()
        except Exception:
            logger.exception("background prewarm failed")
        finally:
            connections.close_all()  # this thread's connections; nobody else will close them

    thread = threading.Thread(target=run, name="embedding-prewarm", daemon=True)
    thread.start()
    return thread
