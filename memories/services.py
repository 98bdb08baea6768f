"""Writing memories: create (with per-user dedupe and linking), update, delete, forget a user.

The API, the admin, the management commands and the post-call ingestion all call these functions.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.admin_log import redact_log_entries
from embeddings.clearing import forget_cached_texts
from embeddings.generation import generate_embedding, generate_embeddings_batch
from embeddings.providers import get_provider
from memories.caller_cache import caller_changed
from memories.database import user_write_lock
from memories.forget import FORGETTERS
from memories.models import Memory, MemoryLink, text_fingerprint
from memories.owners import Owner, OwnerError
from memories.reinforcement import reinforce
from memories.search_backends import get_search_backend
from memories.sectors import Sector, SectorError, guess_sectors, parse_sectors
from memories.text_search import forget_statistics

logger = logging.getLogger(__name__)

SAME_CALL_WINDOW = 2
LINK_CANDIDATES = 5  # the nearest memories looked at for each new one: its duplicate, and what to link it to


class MemoryInputError(ValueError):
    """The memory cannot be stored as given (empty text, too long, unknown sector); the API answers 400."""


@dataclass
class NewMemory:
    """What to remember. Sectors are checked here, once; when none is given they are guessed from the text when
    the memory is stored (a primary and up to two more). `occurred_at` defaults to the time it is stored."""

    text: str
    sector: str | None = None
    extra_sectors: list[str] = field(default_factory=list)
    salience: float = 0.5
    source_conversation_id: str = ""
    source_turns: list[int] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    kind: str = Memory.Kind.NOTE
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in Memory.Kind.values:
            raise MemoryInputError(f"unknown memory kind {self.kind!r}; use one of: {', '.join(Memory.Kind.values)}")
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


def check_owner(owner: object) -> None:
    """Every write names whose memory it is: a user in a space, never a bare user id."""
    if not isinstance(owner, Owner):
        raise TypeError(f"expected an Owner (a user id in a memory space), got {type(owner).__name__}")


def owner_of(space_id: int, user_id: object) -> Owner:
    """An Owner from untrusted input; MemoryInputError with the reason when it is not one."""
    try:
        return Owner(space_id, user_id)
    except OwnerError as error:
        raise MemoryInputError(str(error)) from None


def clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise MemoryInputError("text must be a non-empty string")
    text = " ".join(text.split())
    if len(text) > settings.MEMORY_MAX_TEXT_CHARS:
        raise MemoryInputError(f"text is {len(text)} characters long; the limit is {settings.MEMORY_MAX_TEXT_CHARS}")
    return text


def create_memory(
    owner: Owner, new: NewMemory, embedding: np.ndarray | None = None, deadline: float | None = None
) -> StoredMemory:
    """Store one memory for `owner`, or reinforce the existing memory it repeats.

    Repeats are an identical text (case and spacing aside) or a cosine similarity of at least
    MEMORY_DEDUPE_SIMILARITY with a current memory of the same user. A new memory is linked to up to
    MEMORY_LINKS_PER_MEMORY similar memories of that user. Raises MemoryInputError for bad input and the
    embedding errors when the text cannot be embedded.
    """
    embeddings = None if embedding is None else [embedding]
    return create_memories(owner, [new], embeddings=embeddings, deadline=deadline)[0]


def create_memories(
    owner: Owner,
    items: Sequence[NewMemory],
    embeddings: Sequence[np.ndarray] | None = None,
    link_together: bool = False,
    deadline: float | None = None,
) -> list[StoredMemory]:
    """Store several memories of one user: one embedding batch, then one transaction, deduped and linked.

    With `link_together` the new memories are also linked to each other (said in the same call). `deadline` (a
    `time.monotonic()` value) bounds the wait for the embedding provider, as on the tools' path.
    """
    check_owner(owner)
    return store_memories(owner, prepare_memories(items, embeddings, deadline), link_together=link_together)


@dataclass
class PreparedMemory:
    item: NewMemory
    embedding: np.ndarray


def prepare_memories(
    items: Sequence[NewMemory], embeddings: Sequence[np.ndarray] | None = None, deadline: float | None = None
) -> list[PreparedMemory]:
    """Clean the texts, guess missing sectors and embed them all in one batch (through the cache): everything a
    store needs that may wait on a provider, done before any transaction is opened.

    Raises MemoryInputError for bad input and the embedding errors when the texts cannot be embedded.
    """
    for item in items:
        item.text = clean_text(item.text)
        item.guess_missing_sectors()
    if embeddings is None:
        embeddings = generate_embeddings_batch([item.text for item in items], deadline=deadline)
    return [PreparedMemory(item, embedding) for item, embedding in zip(items, embeddings, strict=True)]


def store_memories(owner: Owner, prepared: Sequence[PreparedMemory], link_together: bool = False) -> list[StoredMemory]:
    """Store prepared memories of one user in one short transaction (no provider call inside it).

    The user's memories are searched once for the whole batch (the nearest few of each new memory: its duplicate,
    if any, and what to link it to), and the batch is compared with itself in memory.
    """
    check_owner(owner)
    model = get_provider().model
    with user_write_lock(owner):
        batch = Batch(owner, prepared)
        results = [batch.store(index, model) for index in range(len(prepared))]
        batch.save_links()
        if link_together:
            link_same_call([result.memory for result in results])
    return results


class Batch:
    """One store_memories call: the existing memories the new ones resemble, and the new ones so far."""

    def __init__(self, owner: Owner, prepared: Sequence[PreparedMemory]) -> None:
        self.owner = owner
        self.prepared = prepared
        backend = get_search_backend()
        self.nearest = backend.search_many([entry.embedding for entry in prepared], owner, limit=LINK_CANDIDATES)
        matched = {match.memory_id for matches in self.nearest for match in matches}
        self.kinds = dict(Memory.objects.for_user(owner).filter(pk__in=matched).values_list("id", "kind"))
        hashes = {text_fingerprint(entry.item.text) for entry in prepared}
        self.current = {
            memory.text_hash: memory
            for memory in Memory.objects.for_user(owner).current().filter(text_hash__in=hashes).defer("embedding")
        }
        self.created: list[tuple[Memory, np.ndarray]] = []
        self.links: dict[tuple[int, int], float] = {}

    def store(self, index: int, model: str) -> StoredMemory:
        item, embedding = self.prepared[index].item, self.prepared[index].embedding
        similar = self.similar(index)
        duplicate = self.duplicate_of(item, similar)
        if duplicate is not None:
            _absorb_repeat(duplicate, item)
            return StoredMemory(memory=duplicate, created=False)
        memory = Memory(
            space_id=self.owner.space_id,
            user_id=self.owner.user_id,
            kind=item.kind,
            occurred_at=item.occurred_at or timezone.now(),
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
            existing = Memory.objects.for_user(self.owner).current().get(text_hash=text_fingerprint(item.text))
            _absorb_repeat(existing, item)
            return StoredMemory(memory=existing, created=False)
        self.current[memory.text_hash] = memory
        self.created.append((memory, embedding))
        for other_id, similarity, _ in similar[: settings.MEMORY_LINKS_PER_MEMORY]:
            if similarity >= settings.MEMORY_LINK_SIMILARITY:
                self.links[tuple(sorted((memory.pk, other_id)))] = round(similarity, 4)
        return StoredMemory(memory=memory, created=True)

    def similar(self, index: int) -> list[tuple[int, float, str]]:
        """(memory id, cosine, kind) of the existing and already stored new memories nearest this one, best first."""
        found = [
            (match.memory_id, match.similarity, self.kinds.get(match.memory_id, "")) for match in self.nearest[index]
        ]
        if self.created:
            matrix = np.vstack([vector for _, vector in self.created])
            query = self.prepared[index].embedding
            norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
            similarities = (matrix @ query) / np.where(norms == 0, 1.0, norms)
            found += [
                (memory.pk, float(value), memory.kind)
                for (memory, _), value in zip(self.created, similarities, strict=True)
            ]
        return sorted(found, key=lambda entry: (-entry[1], entry[0]))[:LINK_CANDIDATES]

    def duplicate_of(self, item: NewMemory, similar: list[tuple[int, float, str]]) -> Memory | None:
        """The current memory `item` repeats, or None.

        The same words (case and spacing aside) always repeat. A caller's utterance repeats nothing else: two things
        said alike are still two things said ("I live in Lyon" and "I lived in Lyon"), and both are kept. Other
        memories also repeat one (not an utterance) at cosine MEMORY_DEDUPE_SIMILARITY or more.
        """
        identical = self.current.get(text_fingerprint(item.text))
        if identical is not None or item.kind == Memory.Kind.UTTERANCE:
            return identical
        for memory_id, similarity, kind in similar[:1]:
            if similarity >= settings.MEMORY_DEDUPE_SIMILARITY and kind != Memory.Kind.UTTERANCE:
                return Memory.objects.for_user(self.owner).get(pk=memory_id)
        return None

    def save_links(self) -> None:
        MemoryLink.objects.bulk_create(
            [
                MemoryLink(
                    from_memory_id=low,
                    to_memory_id=high,
                    weight=weight,
                    reason=MemoryLink.Reason.SIMILAR,
                    space_id=self.owner.space_id,
                    user_id=self.owner.user_id,
                )
                for (low, high), weight in sorted(self.links.items())
            ],
            ignore_conflicts=True,
        )


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
    if len({memory.owner for memory in memories}) > 1:
        raise MemoryInputError("memories of different users cannot be linked")
    links = [
        MemoryLink(
            from_memory=low,
            to_memory=high,
            weight=0.5,
            reason=MemoryLink.Reason.SAME_CALL,
            space_id=low.space_id,
            user_id=low.user_id,
        )
        for low, high in sorted(pairs, key=lambda pair: (pair[0].pk, pair[1].pk))
    ]
    MemoryLink.objects.bulk_create(links, ignore_conflicts=True)
    return len(links)


def _absorb_repeat(existing: Memory, item: NewMemory) -> None:
    """A repeat reinforces the memory it repeats and records where it was said again (conversation and turns)."""
    reinforce([existing.pk])
    existing.refresh_from_db()
    if not item.source_conversation_id:
        return
    if item.source_conversation_id == existing.source_conversation_id:
        existing.source_turns = sorted(set(existing.source_turns) | set(item.source_turns))
        existing.save(update_fields=["source_turns"])
        return
    repeats = existing.metadata.get("said_again", [])
    if not any(repeat.get("conversation_id") == item.source_conversation_id for repeat in repeats):
        existing.metadata["said_again"] = [
            *repeats,
            {"conversation_id": item.source_conversation_id, "turns": item.source_turns},
        ]
        existing.save(update_fields=["metadata"])


def link_memories(first: Memory, second: Memory, weight: float, reason: str) -> MemoryLink | None:
    """Link two memories of the same user (the stronger weight wins on an existing link)."""
    if first.owner != second.owner:
        raise MemoryInputError("memories of different users cannot be linked")
    if first.pk == second.pk:
        return None
    low, high = sorted((first, second), key=lambda memory: memory.pk)
    weight = min(1.0, max(0.0, weight))
    link, created = MemoryLink.objects.get_or_create(
        space_id=low.space_id,
        user_id=low.user_id,
        from_memory=low,
        to_memory=high,
        defaults={"weight": weight, "reason": reason},
    )
    if not created and weight > link.weight:
        link.weight = weight
        link.save(update_fields=["weight"])
    return link


def update_memory_fields(memory: Memory, **changes: object) -> Memory:
    """Change a memory's text (re-embedded), sector, salience or metadata; the admin and the API call this."""
    for name in ("sector", "salience", "metadata"):
        if name in changes:
            setattr(memory, name, changes[name])
    if "text" in changes:
        return update_memory_text(memory, changes["text"])
    memory.save()
    return memory


class MemoryConflict(MemoryInputError):
    """The change would make a current memory repeat another current memory of the same user."""


def update_memory_text(memory: Memory, text: str) -> Memory:
    """New text for a memory: re-embedded through the cache, sector kept. MemoryConflict when another current
    memory of the user already says exactly this (merge them instead: delete one)."""
    text = clean_text(text)
    embedding = generate_embedding(text)
    with user_write_lock(memory.owner):
        twin = (
            Memory.objects.for_user(memory.owner)
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
    """`new` contradicts `old`: keep `old` as history, stop returning it. The caller's own words are never
    superseded (what they said stays said); only derived memories and notes are."""
    if old.owner != new.owner:
        raise MemoryInputError("a memory can only supersede one of the same user")
    if old.kind == Memory.Kind.UTTERANCE:
        raise MemoryInputError("the caller's own words are never superseded")
    old.superseded_by = new
    old.valid_until = timezone.now()
    old.save(update_fields=["superseded_by", "valid_until"])
    link_memories(old, new, weight=0.3, reason=MemoryLink.Reason.SUPERSEDES)


def delete_memory(memory: Memory) -> None:
    """Delete one memory with its links; a memory it had superseded becomes current again (the history's newer
    version is gone), unless a current memory already says the same, which then supersedes it. Every statement
    stays within the user's rows (their indexes; docs/scaling.md)."""
    owner = memory.owner
    with user_write_lock(owner):
        links = MemoryLink.objects.filter(space_id=owner.space_id, user_id=owner.user_id)
        links.filter(Q(from_memory=memory) | Q(to_memory=memory)).delete()
        for older in Memory.objects.for_user(owner).filter(superseded_by=memory).defer("embedding"):
            # It becomes current again, unless a current memory says the same: then that one supersedes it.
            twin = (
                Memory.objects.for_user(owner)
                .current()
                .filter(text_hash=older.text_hash)
                .exclude(pk=memory.pk)
                .values_list("pk", flat=True)
                .first()
            )
            older.superseded_by_id = twin
            older.save(update_fields=["superseded_by"])
        memory.delete()
        caller_changed(owner)


def forget_user(owner: Owner) -> dict[str, int]:
    """Delete everything that holds `owner`'s text, in one transaction, then their texts' cached embeddings;
    returns what was removed, by kind. Admin log entries about what was deleted lose their names. When the
    cache is down the count of cached embeddings is missing (logged): those entries age out by LRU."""
    check_owner(owner)
    counts: dict[str, int] = {}
    with transaction.atomic():
        texts = set(Memory.objects.for_user(owner).values_list("text", flat=True))
        memory_ids = list(Memory.objects.for_user(owner).values_list("pk", flat=True))
        link_ids = list(
            MemoryLink.objects.filter(space_id=owner.space_id, user_id=owner.user_id).values_list("pk", flat=True)
        )
        counts["links"] = MemoryLink.objects.filter(pk__in=link_ids).delete()[0]
        for name, forgetter in FORGETTERS.items():
            counts[name] = forgetter(owner)
        counts["memories"] = Memory.objects.filter(pk__in=memory_ids).delete()[1].get(Memory._meta.label, 0)
        caller_changed(owner)
        redact_log_entries(Memory, memory_ids)
        redact_log_entries(MemoryLink, link_ids)
    forget_statistics(owner)  # this process's remembered counts of their words
    try:
        counts["cached_embeddings"] = forget_cached_texts(texts)
    except Exception as error:  # any cache failure: the user is forgotten all the same
        logger.warning(
            "could not remove a forgotten user's cached embeddings",
            extra={"user_id": owner.user_id, "space_id": owner.space_id, "error": repr(error)},
        )
    logger.info("user forgotten", extra={"user_id": owner.user_id, "space_id": owner.space_id, **counts})
    return counts
