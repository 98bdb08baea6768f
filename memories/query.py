"""The memory query: what the ElevenLabs tool and the operators' search endpoint both run."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from embeddings.generation import generate_embedding
from memories.reinforcement import buffer as reinforcements
from memories.scoring import ScoredMemory, rank
from memories.search import expand_via_links, vector_search
from memories.sectors import SectorGuess, guess_sectors


@dataclass
class QueryResult:
    memories: list[ScoredMemory]
    guess: SectorGuess
    timings_ms: dict[str, float] = field(default_factory=dict)


def query_memories(
    user_id: str,
    query: str,
    sectors: Sequence[str] | None = None,
    limit: int = 5,
    expand_links: bool = True,
    reinforce_results: bool = True,
    deadline: float | None = None,
) -> QueryResult:
    """The `limit` best memories of `user_id` for `query`, ranked by the score blend (memories.scoring).

    Embeds the query through the cache, searches MEMORY_CANDIDATE_FACTOR x `limit` candidates (only this
    user's, only `sectors` when given), adds memories one link away, ranks, and reinforces what it returns
    (applied in the background, memories.reinforcement). `deadline` (a `time.monotonic()` value) bounds the wait
    for the embedding provider on a miss (embeddings.generation).
    `timings_ms` has the embed, search and expand times (the Server-Timing header shows them).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedding = generate_embedding(query, deadline=deadline)
    timings["embed"] = _ms_since(started)

    started = time.perf_counter()
    candidates = limit * settings.MEMORY_CANDIDATE_FACTOR
    matches = vector_search(embedding, user_id, sectors, limit=candidates)
    timings["search"] = _ms_since(started)

    started = time.perf_counter()
    if expand_links:
        matches = expand_via_links(matches, max_total=candidates + limit)
    guess = guess_sectors(query)
    ranked = rank(matches, guess)[:limit]
    timings["expand"] = _ms_since(started)

    if reinforce_results:
        reinforcements.add([item.memory.pk for item in ranked])
    return QueryResult(memories=ranked, guess=guess, timings_ms=timings)


def _ms_since(started: float) -> float:
    return round(1000 * (time.perf_counter() - started), 2)
