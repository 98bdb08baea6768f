"""The retrieval score: a documented blend of similarity, decayed salience, recency, link weight and sector.

Pure computation on memories already loaded; writing anything back (reinforcement) is memories.reinforcement's.

    score = w_similarity * similarity                      (cosine, 0..1 after clipping negatives)
          + w_salience   * salience * exp(-decay[sector] * days since last access)
          + w_recency    * 0.5 ** (days since created / MEMORY_RECENCY_HALF_LIFE_DAYS)
          + w_link       * link weight                     (0 for direct matches)
          + w_sector     * query-sector confidence         (when the memory's sectors match the query's guess)

The weights are MEMORY_SCORE_WEIGHTS (settings); docs/memories.md has the defaults and the reasons.
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
    similarity: float
    linked_from: int | None = None  # the matched memory this one was reached from, for link expansion
    link_weight: float = 0.0
    score: float = 0.0


def decayed_salience(memory: Memory, now: datetime) -> float:
    days = max(0.0, (now - memory.last_accessed_at).total_seconds() / SECONDS_PER_DAY)
    return memory.salience * math.exp(-DECAY_PER_DAY.get(memory.sector, 0.005) * days)


def recency(memory: Memory, now: datetime) -> float:
    days = max(0.0, (now - memory.created_at).total_seconds() / SECONDS_PER_DAY)
    return 0.5 ** (days / settings.MEMORY_RECENCY_HALF_LIFE_DAYS)


def score_memory(item: ScoredMemory, now: datetime, guess: SectorGuess | None = None) -> float:
    weights = settings.MEMORY_SCORE_WEIGHTS
    sector_match = 0.0
    if guess and guess.sectors and set(item.memory.sectors) & set(guess.sectors[:2]):
        sector_match = guess.confidence
    return (
        weights["similarity"] * max(0.0, item.similarity)
        + weights["salience"] * decayed_salience(item.memory, now)
        + weights["recency"] * recency(item.memory, now)
        + weights["link"] * item.link_weight
        + weights["sector"] * sector_match
    )


def rank(
    items: list[ScoredMemory], guess: SectorGuess | None = None, now: datetime | None = None
) -> list[ScoredMemory]:
    """Score every item and sort best first (ties by memory id, so the order is deterministic)."""
    now = now or timezone.now()
    for item in items:
        item.score = round(score_memory(item, now, guess), 6)
    return sorted(items, key=lambda item: (-item.score, item.memory.pk))
