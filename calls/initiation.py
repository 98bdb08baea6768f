"""The conversation-initiation answer: who is calling, and what we remember about them.

This runs while the phone rings. It never calls the embedding provider: the prewarm queries' embeddings
come from the cache (a query that is not cached is skipped and warmed in the background), and everything
else is a few indexed reads.
"""

import logging
from dataclasses import dataclass

from django.conf import settings

from calls import payloads
from calls.identity import resolve_caller
from embeddings.prewarm import prewarm_in_background, prewarmed_vectors
from memories.answers import when
from memories.models import Memory
from memories.owners import Owner
from memories.search import RESULT_FIELDS
from memories.search_backends import get_search_backend

logger = logging.getLogger(__name__)


@dataclass
class InitiationMemories:
    memories: list[Memory]
    context: str
    uncached_queries: list[str]


def query_memories_for_initiation(owner: Owner) -> InitiationMemories:
    """The user's memories for the enabled prewarm queries plus the most salient recent ones, deduplicated,
    formatted one per line and cut to INITIATION_CONTEXT_MAX_CHARS (whole lines only)."""
    vectors, uncached = prewarmed_vectors()
    chosen: dict[int, Memory] = {}
    per_query = settings.INITIATION_MEMORIES_PER_QUERY
    if per_query and vectors:
        matches = get_search_backend().search_many(list(vectors.values()), owner, per_query)
        wanted = list(dict.fromkeys(match.memory_id for per_vector in matches for match in per_vector))
        found = Memory.objects.for_user(owner).only(*RESULT_FIELDS).in_bulk(wanted)
        chosen.update((pk, found[pk]) for pk in wanted if pk in found)
    salient = (
        Memory.objects.for_user(owner)
        .current()
        .only(*RESULT_FIELDS)
        .order_by("-salience", "-occurred_at", "-id")[: settings.INITIATION_SALIENT_MEMORIES]
    )
    for memory in salient:
        chosen.setdefault(memory.pk, memory)
    ordered = sorted(chosen.values(), key=lambda memory: (-memory.salience, -memory.occurred_at.timestamp(), memory.pk))
    return InitiationMemories(memories=ordered, context=format_context(ordered), uncached_queries=uncached)


def format_context(memories: list[Memory]) -> str:
    budget = settings.INITIATION_CONTEXT_MAX_CHARS
    lines: list[str] = []
    used = 0
    seen_texts: set[str] = set()
    for memory in memories:
        if memory.text.lower() in seen_texts:
            continue
        line = f"- {memory.text} ({when(memory.occurred_at)})"
        if used + len(line) + (1 if lines else 0) > budget:
            continue
        lines.append(line)
        seen_texts.add(memory.text.lower())
        used += len(line) + (1 if len(lines) > 1 else 0)
    return "\n".join(lines)


def default_answer(user_id: str = "") -> dict:
    """The answer with a default for every variable: what the agent gets when anything goes wrong."""
    variables = {"user_id": user_id, "memory_context": "", "caller_known": False, "memory_count": 0}
    return payloads.initiation_response(variables, user_id=user_id)


def initiation_answer(space_id: int, body: dict) -> dict:
    """The full answer for an initiation request body (already admitted to space `space_id`)."""
    caller = resolve_caller(space_id, payloads.initiation_caller(body))
    if caller is None:
        return default_answer()
    found = query_memories_for_initiation(caller.owner)
    if found.uncached_queries:
        logger.warning("prewarm queries not cached at call start", extra={"queries": found.uncached_queries})
        prewarm_in_background()
    variables = {
        "user_id": caller.user_id,
        "memory_context": found.context,
        "caller_known": caller.known,
        "memory_count": len(found.memories),
    }
    template = settings.INITIATION_KNOWN_CALLER_FIRST_MESSAGE
    first_message = ""
    if template and caller.known:
        first_message = template.replace("{memory_context}", found.context).replace("{user_id}", caller.user_id)
    return payloads.initiation_response(variables, user_id=caller.user_id, first_message=first_message)
