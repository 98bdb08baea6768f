"""The retrieval score: a documented blend, and the capped reinforcement of what gets retrieved.

    score = w_similarity * similarity                      (cosine, 0..1 after clipping negatives)
          + w_salience   * salience * exp(-decay[sector] * days since last access)
          + w_recency    * 0.5 ** (days since created / MEMORY_RECENCY_HALF_LIFE_DAYS)
          + w_link       * link weight                     (0 for direct matches)
          + w_sector     * query-sector confidence         (when the memory's sectors match the query's guess)

The weights are MEMORY_SCORE_WEIGHTS (settings); docs/memories.md has the defaults and the reasons.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least
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


def reinforce(memory_ids: list[int], times: int = 1) -> int:
    """Record `times` retrievals of each memory: bump the access count and recency, and move salience
    towards the cap.

    Per retrieval salience += MEMORY_REINFORCE_STEP * (1 - salience), never above MEMORY_REINFORCE_CAP (0.9)
    and never lowered: from 0.5 it takes about 34 retrievals to reach 0.75 and it never saturates at 1.0.
    `times` retrievals at once apply the same steps in closed form. One UPDATE for all of them, committed
    without waiting for the WAL flush (see relaxed_commit).
    """
    if not memory_ids or times < 1:
        return 0
    step, cap = settings.MEMORY_REINFORCE_STEP, settings.MEMORY_REINFORCE_CAP
    remaining = (1.0 - step) ** times  # 1 - salience shrinks by this factor
    boosted = Least(Value(cap), Value(1.0) - (Value(1.0) - F("salience")) * Value(remaining))
    with relaxed_commit():
        return Memory.objects.filter(pk__in=memory_ids).update(
            access_count=F("access_count") + times,
            last_accessed_at=timezone.now(),
            salience=Greatest(F("salience"), boosted),
        )


@contextmanager
def relaxed_commit():
    """A transaction whose commit does not wait for the WAL to reach disk (PostgreSQL).

    For bookkeeping on the request path (retrieval counts, last-seen times): a crash may lose the last few
    hundred milliseconds of such updates, which costs nothing, while waiting for the flush costs a few ms on
    every memory query. Never used for anything that stores a memory or an event.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
