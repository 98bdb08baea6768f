"""The memory query: what the ElevenLabs tool and the operators' search endpoint both run.

1. The query is embedded through the cache (with a deadline on the tool's path).
2. Candidates, MEMORY_CANDIDATE_FACTOR x `limit` from each: the user's nearest memories by cosine (the vector
   index) and, with MEMORY_RETRIEVAL = "hybrid", their best memories by BM25 over their words (the lexical index),
   fused by reciprocal rank (MEMORY_RRF_K). Only this user's, only `sectors` when given. A caller this web
   process served a moment ago is searched in its own copy of their memories (memories.caller_cache).
3. Ranking (memories.scoring); the best `limit` are the direct hits.
4. With link expansion, memories one link away from the hits fill the slots the hits leave (never displacing a
   hit), within the same sectors.
5. What is returned is reinforced, in the background (memories.reinforcement), unless the caller says not to.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from embeddings.generation import generate_embedding, generate_embedding_riding
from memories import hybrid_sql
from memories.caller_cache import callers, token_keys
from memories.models import Memory
from memories.owners import Owner
from memories.reinforcement import buffer as reinforcements
from memories.scoring import ScoredMemory, rank, reciprocal_rank_fusion
from memories.search import expand_via_links, is_owned_by, load_results, scored
from memories.search_backends import Scope, get_search_backend
from memories.sectors import SectorGuess, guess_sectors
from memories.text_search import lexical_candidates


@dataclass
class QueryResult:
    memories: list[ScoredMemory]
    guess: SectorGuess
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Retrieval:
    """How candidates are found and ranked; the defaults come from settings (the LoCoMo benchmark's choice)."""

    hybrid: bool
    expand_links: bool
    weights: dict[str, float]
    kinds: tuple[str, ...]  # the kinds of memory answers are made of

    @classmethod
    def from_settings(cls, **changes: object) -> "Retrieval":
        values = {
            "hybrid": settings.MEMORY_RETRIEVAL == "hybrid",
            "expand_links": settings.MEMORY_EXPAND_LINKS,
            "weights": settings.MEMORY_SCORE_WEIGHTS,
            "kinds": tuple(settings.MEMORY_ANSWER_KINDS),
        }
        values.update(changes)
        return cls(**values)


def query_memories(
    owner: Owner,
    query: str,
    sectors: Sequence[str] | None = None,
    limit: int = 5,
    reinforce_results: bool = True,
    deadline: float | None = None,
    retrieval: Retrieval | None = None,
) -> QueryResult:
    """The `limit` best memories of `owner` for `query` (see the module's docstring for the steps).

    `deadline` (a `time.monotonic()` value) bounds the wait for the embedding provider on a cache miss.
    `timings_ms` has the embed, search and rank times (the Server-Timing header shows them).
    """
    retrieval = retrieval or Retrieval.from_settings()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    one_statement = hybrid_sql.applies(owner)  # most users
    copies = one_statement and callers.enabled()
    if copies:  # the caller's copy's tokens ride with the embedding's lookup
        embedding, tokens = generate_embedding_riding(query, token_keys(owner), deadline=deadline)
    else:
        embedding, tokens = generate_embedding(query, deadline=deadline), None
    timings["embed"] = _ms_since(started)

    started = time.perf_counter()
    candidates = limit * settings.MEMORY_CANDIDATE_FACTOR
    scope = Scope.of(sectors, retrieval.kinds)
    if one_statement:  # this process's copy of the caller, else one statement
        found = None
        if copies:
            found = callers.candidates(embedding, query, owner, scope, candidates, retrieval.hybrid, tokens)
        if found is None:
            found = hybrid_sql.candidates(embedding, query, owner, scope, candidates, retrieval.hybrid)
        matches, lexical_ids, memories = found
    else:
        matches = get_search_backend().search(embedding, owner, scope, candidates)
        dense_ids = {match.memory_id for match in matches}
        if retrieval.hybrid:  # the lexical side brings the rows of both (a round trip fewer on PostgreSQL)
            lexical_ids, memories = lexical_candidates(query, owner, scope, candidates, also=dense_ids)
        else:
            lexical_ids, memories = [], load_results(dense_ids, owner)
    timings["search"] = _ms_since(started)

    started = time.perf_counter()
    items = candidates_of(scored(matches, memories, owner), lexical_ids, memories, owner, retrieval.hybrid)
    guess = guess_sectors(query)
    hits = rank(items, guess, weights=retrieval.weights)[:limit]
    if retrieval.expand_links and len(hits) < limit:
        hits = expand_via_links(hits, max_total=limit, scope=scope)
    timings["rank"] = _ms_since(started)

    if reinforce_results:
        reinforcements.add([item.memory.pk for item in hits])
    return QueryResult(memories=hits, guess=guess, timings_ms=timings)


def candidates_of(
    dense: list[ScoredMemory], lexical_ids: list[int], memories: dict[int, Memory], owner: Owner, hybrid: bool
) -> list[ScoredMemory]:
    """The dense and lexical candidates as one list, each with its relevance (fused ranks, or the cosine);
    `memories` holds the rows of both."""
    if not hybrid:
        for item in dense:
            item.relevance = max(0.0, item.similarity)
        return dense
    fused = reciprocal_rank_fusion([[item.memory.pk for item in dense], lexical_ids], settings.MEMORY_RRF_K)
    by_id = {item.memory.pk: item for item in dense}
    for memory_id in lexical_ids:
        memory = memories.get(memory_id)
        if memory_id not in by_id and memory is not None and is_owned_by(memory, owner):
            by_id[memory_id] = ScoredMemory(memory=memory, similarity=0.0)
    for memory_id, item in by_id.items():
        item.relevance = fused.get(memory_id, 0.0)
    return list(by_id.values())


def _ms_since(started: float) -> float:
    return round(1000 * (time.perf_counter() - started), 2)
