"""The retrieval score: relevance first, then whatever terms the LoCoMo ablation shows do not hurt.

    score = w_relevance * relevance          (hybrid: reciprocal rank fusion of the dense and lexical ranks,
                                              scaled to 0..1; dense only: cosine, negatives clipped)
          + w_salience  * salience * exp(-decay[sector] * days since last access)
          + w_recency   * 0.5 ** (days since it occurred / MEMORY_RECENCY_HALF_LIFE_DAYS)
          + w_link      * link weight        (0 for direct hits; links only fill slots after them)
          + w_sector    * query-sector confidence, when the memory's sectors match the query's guess

Weights are MEMORY_SCORE_WEIGHTS (settings); docs/benchmarks.md has the ablation behind each default.
Pure computation on memories already loaded: what a retrieval writes back is memories.reinforcement's.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from memories.models import Memory
from memories.sectors import DECAY_PER_DAY, SectorGuess

SECONDS_PER_DAY = 86_400


@dataclass
class ScoredMemory:
    memory: Memory
    similarity: float  # cosine with the query; 0 for a memory found by its words only
    relevance: float = 0.0  # what the retrieval ranked it by, 0..1
    linked_from: int | None = None  # the hit this one was reached from, for link expansion
    link_weight: float = 0.0
    score: float = 0.0


def decayed_salience(memory: Memory, now: datetime) -> float:
    days = max(0.0, (now - memory.last_accessed_at).total_seconds() / SECONDS_PER_DAY)
    return memory.salience * math.exp(-DECAY_PER_DAY.get(memory.sector, 0.005) * days)


def recency(memory: Memory, now: datetime) -> float:
    days = max(0.0, (now - memory.occurred_at).total_seconds() / SECONDS_PER_DAY)
    return 0.5 ** (days / settings.MEMORY_RECENCY_HALF_LIFE_DAYS)


def score_memory(
    item: ScoredMemory, now: datetime, guess: SectorGuess | None = None, weights: dict[str, float] | None = None
) -> float:
    weights = weights or settings.MEMORY_SCORE_WEIGHTS
    sector_match = 0.0
    if weights["sector"] and guess and guess.sectors and set(item.memory.sectors) & set(guess.sectors[:2]):
        sector_match = guess.confidence
    return (
        weights["relevance"] * item.relevance
        + (weights["salience"] and weights["salience"] * decayed_salience(item.memory, now))
        + (weights["recency"] and weights["recency"] * recency(item.memory, now))
        + weights["link"] * item.link_weight
        + weights["sector"] * sector_match
    )


def rank(
    items: list[ScoredMemory],
    guess: SectorGuess | None = None,
    now: datetime | None = None,
    weights: dict[str, float] | None = None,
) -> list[ScoredMemory]:
    """Score every item and sort best first (ties by memory id, so the order is deterministic)."""
    now = now or timezone.now()
    for item in items:
        item.score = round(score_memory(item, now, guess, weights), 6)
    return sorted(items, key=lambda item: (-item.score, item.memory.pk))


def reciprocal_rank_fusion(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Each id's sum of 1 / (k + rank) over the rankings it appears in (rank from 1), scaled so that first in every
    ranking is 1.0. Robust to the rankings' scores having nothing in common (cosine, BM25)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for position, memory_id in enumerate(ranking, start=1):
            fused[memory_id] = fused.get(memory_id, 0.0) + 1.0 / (k + position)
    best = len(rankings) / (k + 1)
    return {memory_id: value / best for memory_id, value in fused.items()}
