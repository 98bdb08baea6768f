"""Reading memories: vector search (always for one user) and one-hop link expansion."""

import json
from collections.abc import Collection, Sequence

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Q

from memories.models import Memory, MemoryLink
from memories.owners import Owner
from memories.scoring import ScoredMemory
from memories.search_backends import EVERYTHING, Scope, VectorMatch, get_search_backend

# Columns the ranking and the answers need; the embedding itself is never loaded on the query path.
RESULT_FIELDS = (
    "id",
    "space",
    "user_id",
    "kind",
    "text",
    "sector",
    "extra_sectors",
    "salience",
    "created_at",
    "occurred_at",
    "last_accessed_at",
    "access_count",
)
RESULT_COLUMNS = ", ".join(Memory._meta.get_field(name).column for name in RESULT_FIELDS)
# The same columns in the model's order, as Model.from_db expects them from a raw row (memory_from_row).
RESULT_ATTNAMES = tuple(field.attname for field in Memory._meta.concrete_fields if field.name in RESULT_FIELDS)
_EXTRA_SECTORS = RESULT_ATTNAMES.index("extra_sectors")


def result_columns(alias: str) -> str:
    """The SELECT list of RESULT_ATTNAMES on table alias `alias`, in the order memory_from_row reads them."""
    return ", ".join(f"{alias}.{column}" for column in RESULT_ATTNAMES)


def memory_from_row(values: Sequence) -> Memory:
    """A Memory from a raw row's RESULT_ATTNAMES columns, in that order."""
    values = list(values)
    values[_EXTRA_SECTORS] = sectors_from_row(values[_EXTRA_SECTORS])
    return Memory.from_db(connection.alias, RESULT_ATTNAMES, values)


def sectors_from_row(value: str | Sequence[str]) -> list[str]:
    """A raw row's extra_sectors as a list: Django has psycopg hand jsonb over as text; memories.caller_cache
    keeps it as a tuple."""
    return json.loads(value) if isinstance(value, str) else list(value)


def vector_search(
    embedding: np.ndarray,
    owner: Owner,
    sectors: Sequence[str] | None = None,
    limit: int = 10,
    kinds: Sequence[str] | None = None,
) -> list[ScoredMemory]:
    """The `limit` memories of `owner` nearest to `embedding` (cosine), most similar first.

    Only that user's current (not superseded) memories are searched; `sectors` keeps memories whose primary
    or additional sectors include one of them, `kinds` those of these kinds. The backend is pgvector on
    PostgreSQL, exact numpy elsewhere.
    """
    matches = get_search_backend().search(embedding, owner, Scope.of(sectors, kinds), limit)
    return scored(matches, load_results([match.memory_id for match in matches], owner), owner)


def scored(matches: Sequence[VectorMatch], memories: dict[int, Memory], owner: Owner) -> list[ScoredMemory]:
    """Vector matches as ScoredMemory, in their order; a match the rows do not hold (deleted since) is dropped."""
    return [
        ScoredMemory(memory=memories[match.memory_id], similarity=match.similarity)
        for match in matches
        if match.memory_id in memories and is_owned_by(memories[match.memory_id], owner)
    ]


def is_owned_by(memory: Memory, owner: Owner) -> bool:
    """memory.owner == owner, without building an Owner (the query path asks it of every candidate)."""
    return memory.user_id == owner.user_id and memory.space_id == owner.space_id


def load_results(ids: Collection[int], owner: Owner) -> dict[int, Memory]:
    """`owner`'s memories with these ids, with the RESULT_FIELDS only, in one raw statement: on the tool's path
    the ORM's query compilation cost more than the query itself (RawQuerySet still applies the field converters).
    The owner's key is in the statement, so a distributed database reads one shard (docs/scaling.md)."""
    if not ids:
        return {}
    ids = list(ids)
    marks = ", ".join(["%s"] * len(ids))
    rows = Memory.objects.raw(
        f"SELECT {RESULT_COLUMNS} FROM {Memory._meta.db_table} "
        f"WHERE space_id = %s AND user_id = %s AND id IN ({marks})",
        [owner.space_id, owner.user_id, *ids],
    )
    return {memory.pk: memory for memory in rows}


def expand_via_links(hits: list[ScoredMemory], max_total: int, scope: Scope = EVERYTHING) -> list[ScoredMemory]:
    """The hits, then memories one link away from them in the slots left, at most `max_total` in all.

    A linked memory never displaces a hit: it comes after them all. Its score is its parent's score x the
    link's weight x MEMORY_LINK_ATTENUATION; links are followed in both directions, only between memories of the
    same user (a link row that crosses users is ignored), never to superseded memories nor to memories outside
    `scope`; a memory reached twice keeps its best score.
    """
    if not hits or len(hits) >= max_total:
        return hits[:max_total]
    by_id = {item.memory.pk: item for item in hits}
    owner_of = {item.memory.pk: item.memory.owner for item in hits}
    same_owners = Q(
        *[Q(space_id=owner.space_id, user_id=owner.user_id) for owner in set(owner_of.values())], _connector=Q.OR
    )
    links = (
        MemoryLink.objects.filter(same_owners)
        .filter(Q(from_memory_id__in=by_id) | Q(to_memory_id__in=by_id))
        .values_list("from_memory_id", "to_memory_id", "weight")
    )
    candidates: dict[int, tuple[int, float, float]] = {}  # neighbour id -> (parent id, score, weight)
    attenuation = settings.MEMORY_LINK_ATTENUATION
    for from_id, to_id, weight in links:
        for parent_id, neighbour_id in ((from_id, to_id), (to_id, from_id)):
            if parent_id not in by_id or neighbour_id in by_id:
                continue
            score = by_id[parent_id].score * weight * attenuation
            best = candidates.get(neighbour_id)
            if best is None or (score, -parent_id) > (best[1], -best[0]):
                candidates[neighbour_id] = (parent_id, score, weight)
    if not candidates:
        return list(hits)
    neighbours = Memory.objects.current().filter(same_owners).only(*RESULT_FIELDS).in_bulk(list(candidates))
    expanded = [
        ScoredMemory(
            memory=memory,
            similarity=0.0,
            linked_from=candidates[pk][0],
            link_weight=candidates[pk][2],
            score=round(candidates[pk][1], 6),
        )
        for pk, memory in neighbours.items()
        if memory.owner == owner_of[candidates[pk][0]]
        and scope.admits(memory.sector, memory.extra_sectors, memory.kind)
    ]
    expanded.sort(key=lambda item: (-item.score, item.memory.pk))
    return [*hits, *expanded][:max_total]
