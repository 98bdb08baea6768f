"""Reading memories: vector search (always for one user) and one-hop link expansion."""

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db.models import Q

from memories.models import Memory, MemoryLink
from memories.scoring import ScoredMemory
from memories.search_backends import get_search_backend

# Columns the ranking and the answers need; the embedding itself is never loaded on the query path.
RESULT_FIELDS = (
    "id",
    "user_id",
    "text",
    "sector",
    "extra_sectors",
    "salience",
    "created_at",
    "last_accessed_at",
    "access_count",
)


def vector_search(
    embedding: np.ndarray, user_id: str, sectors: Sequence[str] | None = None, limit: int = 10
) -> list[ScoredMemory]:
    """The `limit` memories of `user_id` nearest to `embedding` (cosine), most similar first.

    Only that user's current (not superseded) memories are searched; `sectors` keeps memories whose primary
    or additional sectors include one of them. The backend is pgvector on PostgreSQL, exact numpy elsewhere.
    """
    matches = get_search_backend().search(embedding, user_id, sectors, limit)
    memories = Memory.objects.only(*RESULT_FIELDS).in_bulk([match.memory_id for match in matches])
    return [
        ScoredMemory(memory=memories[match.memory_id], similarity=match.similarity)
        for match in matches
        if match.memory_id in memories and memories[match.memory_id].user_id == user_id
    ]


def expand_via_links(matches: list[ScoredMemory], max_total: int) -> list[ScoredMemory]:
    """The matches plus memories one link away, at most `max_total` in all.

    A linked memory gets similarity = parent similarity * link weight * MEMORY_LINK_ATTENUATION; links are
    followed in both directions, only between memories of the same user (a link row that crosses users is
    ignored), never to superseded memories, and a memory reached twice keeps its best score. Order:
    the matches as given, then the linked memories by attenuated similarity (ties by id).
    """
    if not matches or len(matches) >= max_total:
        return matches[:max_total]
    by_id = {item.memory.pk: item for item in matches}
    user_of = {item.memory.pk: item.memory.user_id for item in matches}
    links = MemoryLink.objects.filter(Q(from_memory_id__in=by_id) | Q(to_memory_id__in=by_id)).values_list(
        "from_memory_id", "to_memory_id", "weight"
    )
    candidates: dict[int, tuple[int, float, float]] = {}  # neighbour id -> (parent id, similarity, weight)
    attenuation = settings.MEMORY_LINK_ATTENUATION
    for from_id, to_id, weight in links:
        for parent_id, neighbour_id in ((from_id, to_id), (to_id, from_id)):
            if parent_id not in by_id or neighbour_id in by_id:
                continue
            similarity = by_id[parent_id].similarity * weight * attenuation
            best = candidates.get(neighbour_id)
            if best is None or (similarity, -parent_id) > (best[1], -best[0]):
                candidates[neighbour_id] = (parent_id, similarity, weight)
    if not candidates:
        return list(matches)
    neighbours = Memory.objects.current().only(*RESULT_FIELDS).in_bulk(list(candidates))
    expanded = [
        ScoredMemory(
            memory=memory, similarity=candidates[pk][1], linked_from=candidates[pk][0], link_weight=candidates[pk][2]
        )
        for pk, memory in neighbours.items()
        if memory.user_id == user_of[candidates[pk][0]]
    ]
    expanded.sort(key=lambda item: (-item.similarity, item.memory.pk))
    return [*matches, *expanded][:max_total]
