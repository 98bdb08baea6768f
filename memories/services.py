"""Writing memories: create (with per-user dedupe and linking), update, delete, forget a user.

The API, the admin, the management commands and the post-call ingestion all call these functions.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from embeddings.generation import generate_embedding, generate_embeddings_batch
from embeddings.providers import get_provider
from memories.database import user_write_lock
from memories.forget import FORGETTERS
from memories.models import Memory, MemoryLink, text_fingerprint
from memories.reinforcement import reinforce
from memories.search import vector_search
from memories.sectors import Sector, SectorError, guess_sectors, parse_sectors

logger = logging.getLogger(__name__)

SAME_CALL_WINDOW = 2


class MemoryInputError(ValueError):
    """The memory cannot be stored as given (empty text, too long, unknown sector); the API answers 400."""


@dataclass
class NewMemory:
    """What a caller wants remembered. Sectors are checked here, once; when none is given they are guessed from
    the text when the memory is stored (a primary and up to two more)."""

    text: str
    sector: str | None = None
    extra_sectors: list[str] = field(default_factory=list)
    salience: float = 0.5
    source_conversation_id: str = ""
    source_turns: list[int] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            primary = parse_sectors([self.sector] if self.sector else [])
            self.extra_sectors = [sector for sector in parse_sectors(self.extra_sectors) if sector not in primary]
        except SectorError as error:
            raise MemoryInputError(str(error)) from None
        self.sector = primary[0] if primary else None

    def guess_missing_sectors(self) -> None:
        if self.sector is None:
            guess = guess_sectors(self.text)
            self.sector = Sector(guess.primary)
            self.extra_sectors = [sector for sector in guess.extras if sector != self.sector]


@dataclass
class StoredMemory:
    memory: Memory
    created: bool  # False: an existing memory repeated by this one was reinforced instead


def check_user_id(user_id: object) -> None:
    if not user_id or not isinstance(user_id, str):
        raise MemoryInputError("user_id must be a non-empty string")


def clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise MemoryInputError("text must be a non-empty string")
    text = " ".join(text.split())
    if len(text) > settings.MEMORY_MAX_TEXT_CHARS:
        raise MemoryInputError(f"text is {len(text)} characters long; the limit is {settings.MEMORY_MAX_TEXT_CHARS}")
    return text


def create_memory(user_id: str, new: NewMemory, embedding: np.ndarray | None = None) -> StoredMemory:
    """Store one memory for `user_id`, or reinforce the existing memory it repeats.

    Repeats are an identical text (case and spacing aside) or a cosine similarity of at least
    MEMORY_DEDUPE_SIMILARITY with a current memory of the same user. A new memory is linked to up to
    MEMORY_LINKS_PER_MEMORY similar memories of that user. Raises MemoryInputError for bad input and the
    embedding errors when the text cannot be embedded.
    """
    return create_memories(user_id, [new], embeddings=None if embedding is None else [embedding])[0]


def create_memories(
    user_id: str,
    items: Sequence[NewMemory],
    embeddings: Sequence[np.ndarray] | None = None,
    link_together: bool = False,
) -> list[StoredMemory]:
    """Store several memories of one user: one embedding batch, then one transaction, deduped and linked.

    With `link_together` the new memories are also linked to each other (said in the same call).
    """
    check_user_id(user_id)
    return store_memories(user_id, prepare_memories(items, embeddings), link_together=link_together)


@dataclass
class PreparedMemory:
    item: NewMemory
    embedding: np.ndarray


def prepare_memories(
    items: Sequence[NewMemory], embeddings: Sequence[np.ndarray] | None = None
) -> list[PreparedMemory]:
    """Clean the texts, guess missing sectors and embed them all in one batch (through the cache): everything a
    store needs that may wait on a provider, done before any transaction is opened.

    Raises MemoryInputError for bad input and the embedding errors when the texts cannot be embedded.
    """
    for item in items:
        item.text = clean_text(item.text)
        item.guess_missing_sectors()
    if embeddings is None:
        embeddings = generate_embeddings_batch([item.text for item in items])
    return [PreparedMemory(item, embedding) for item, embedding in zip(items, embeddings, strict=True)]


def store_memories(user_id: str, prepared: Sequence[PreparedMemory], link_together: bool = False) -> list[StoredMemory]:
    """Store prepared memories of one user in one short transaction (no provider call inside it)."""
    check_user_id(user_id)
    model = get_provider().model
    results: list[StoredMemory] = []
    with user_write_lock(user_id):
        for entry in prepared:
            results.append(_store_one(user_id, entry.item, entry.embedding, model))
        if link_together:
            link_same_call([result.memory for result in results])
    return results


def link_same_call(memories: Sequence[Memory]) -> int:
    """Link memories said in the same call to the next SAME_CALL_WINDOW ones (co-occurrence), in one insert.

    A window rather than every pair: a call of 40 memories gets about 80 links instead of 780, and one hop
    from any memory still reaches what was said around it.
    """
    pairs = set()
    for index, first in enumerate(memories):
        for second in memories[index + 1 : index + 1 + SAME_CALL_WINDOW]:
            if first.pk != second.pk:
                low, high = sorted((first, second), key=lambda memory: memory.pk)
                pairs.add((low, high))
    links = [
        MemoryLink(from_memory=low, to_memory=high, weight=0.5, reason=MemoryLink.Reason.SAME_CALL, user_id=low.user_id)
        for low, high in sorted(pairs, key=lambda pair: (pair[0].pk, pair[1].pk))
    ]
    MemoryLink.objects.bulk_create(links, ignore_conflicts=True)
    return len(links)


def _store_one(user_id: str, item: NewMemory, embedding: np.ndarray, model: str) -> StoredMemory:
    duplicate = find_duplicate(user_id, item.text, embedding)
    if duplicate is not None:
        _absorb_repeat(duplicate, item)
        return StoredMemory(memory=duplicate, created=False)
    similar = vector_search(embedding, user_id, limit=settings.MEMORY_LINKS_PER_MEMORY)
    memory = Memory(
        user_id=user_id,
        text=item.text,
        sector=item.sector,
        extra_sectors=item.extra_sectors,
        embedding=embedding,
        embedding_model=model,
        salience=min(1.0, max(0.0, item.salience)),
        source_conversation_id=item.source_conversation_id,
        source_turns=item.source_turns,
        metadata=item.metadata,
    )
    try:
        with transaction.atomic():
            memory.save()
    except IntegrityError:  # an identical memory was stored concurrently (unique per user and text)
        existing = Memory.objects.for_user(user_id).current().get(text_hash=text_fingerprint(item.text))
        _absorb_repeat(existing, item)
        return StoredMemory(memory=existing, created=False)
    for match in similar:
        if match.similarity >= settings.MEMORY_LINK_SIMILARITY:
            link_memories(memory, match.memory, weight=round(match.similarity, 4), reason=MemoryLink.Reason.SIMILAR)
    return StoredMemory(memory=memory, created=True)


def find_duplicate(user_id: str, text: str, embedding: np.ndarray) -> Memory | None:
    """The current memory of `user_id` that `text` repeats, if any (never another user's)."""
    identical = Memory.objects.for_user(user_id).current().filter(text_hash=text_fingerprint(text)).first()
    if identical is not None:
        return identical
    nearest = vector_search(embedding, user_id, limit=1)
    if nearest and nearest[0].similarity >= settings.MEMORY_DEDUPE_SIMILARITY:
        return Memory.objects.get(pk=nearest[0].memory.pk)
    return None


def _absorb_repeat(existing: Memory, item: NewMemory) -> None:
    """A repeat reinforces the memory it repeats and records where it was said again."""
    reinforce([existing.pk])
    existing.refresh_from_db()
    turns = sorted(set(existing.source_turns) | set(item.source_turns)) if item.source_turns else None
    repeats = existing.metadata.get("repeated_in", [])
    if item.source_conversation_id and item.source_conversation_id not in [*repeats, existing.source_conversation_id]:
        existing.metadata["repeated_in"] = [*repeats, item.source_conversation_id]
        existing.save(update_fields=["metadata"])
    elif turns is not None and item.source_conversation_id == existing.source_conversation_id:
        existing.source_turns = turns
        existing.save(update_fields=["source_turns"])


def link_memories(first: Memory, second: Memory, weight: float, reason: str) -> MemoryLink | None:
    """Link two memories of the same user (the stronger weight wins on an existing link)."""
    if first.user_id != second.user_id:
        raise MemoryInputError("memories of different users cannot be linked")
    if first.pk == second.pk:
        return None
    low, high = sorted((first, second), key=lambda memory: memory.pk)
    weight = min(1.0, max(0.0, weight))
    link, created = MemoryLink.objects.get_or_create(
        from_memory=low, to_memory=high, defaults={"weight": weight, "reason": reason, "user_id": low.user_id}
    )
    if not created and weight > link.weight:
        link.weight = weight
        link.save(update_fields=["weight"])
    return link


class MemoryConflict(MemoryInputError):
    """The change would make a current memory repeat another current memory of the same user."""


def update_memory_text(memory: Memory, text: str) -> Memory:
    """New text for a memory: re-embedded through the cache, sector kept. MemoryConflict when another current
    memory of the user already says exactly this (merge them instead: delete one)."""
    text = clean_text(text)
    embedding = generate_embedding(text)
    with user_write_lock(memory.user_id):
        twin = (
            Memory.objects.for_user(memory.user_id)
            .current()
            .filter(text_hash=text_fingerprint(text))
            .exclude(pk=memory.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if twin is not None and memory.superseded_by_id is None:
            raise MemoryConflict(f"memory {twin} of this user already says this; delete one of the two instead")
        memory.text = text
        memory.embedding = embedding
        memory.embedding_model = get_provider().model
        memory.save()
    return memory


def supersede_memory(old: Memory, new: Memory) -> None:
    """`new` contradicts `old`: keep `old` as history, stop returning it."""
    if old.user_id != new.user_id:
        raise MemoryInputError("a memory can only supersede one of the same user")
    old.superseded_by = new
    old.valid_until = timezone.now()
    old.save(update_fields=["superseded_by", "valid_until"])
    link_memories(old, new, weight=0.3, reason=MemoryLink.Reason.SUPERSEDES)


def delete_memory(memory: Memory) -> None:
    memory.delete()


def forget_user(user_id: str) -> dict[str, int]:
    """Delete everything that holds `user_id`'s text, in one transaction; returns what was deleted, by kind."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        counts["links"] = MemoryLink.objects.filter(user_id=user_id).delete()[0]
        for name, forgetter in FORGETTERS.items():
            counts[name] = forgetter(user_id)
        counts["memories"] = Memory.objects.filter(user_id=user_id).delete()[1].get(Memory._meta.label, 0)
    logger.info("user forgotten", extra={"user_id": user_id, **counts})
    return counts
