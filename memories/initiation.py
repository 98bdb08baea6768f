"""The conversation-initiation answer: who is calling, and what we remember about them.

This runs while the phone rings. It never calls the embedding provider: the prewarm queries' embeddings
come from the cache (a query that is not cached is skipped and warmed in the background), and everything
else is a few indexed reads.
"""

import logging
from dataclasses import dataclass

from django.conf import settings

from embeddings.cache import get_embedding_cache
from embeddings.codec import decode_vector, is_valid_vector_bytes
from embeddings.generation import cache_key_for
from embeddings.models import PrewarmQuery
from embeddings.providers import get_provider
from memories.identity import ResolvedCaller, resolve_caller
from memories.models import Memory
from memories.responses import when
from memories.search import RESULT_FIELDS
from memories.search_backends import get_search_backend

logger = logging.getLogger(__name__)

RESPONSE_TYPE = "conversation_initiation_client_data"


@dataclass
class InitiationMemories:
    memories: list[Memory]
    context: str
    uncached_queries: list[str]


def query_memories_for_initiation(user_id: str) -> InitiationMemories:
    """The user's memories for the enabled prewarm queries plus the most salient recent ones, deduplicated,
    formatted one per line and cut to INITIATION_CONTEXT_MAX_CHARS (whole lines only)."""
    provider = get_provider()
    texts = list(PrewarmQuery.objects.filter(enabled=True).values_list("text", flat=True))
    keys = {cache_key_for(text, provider): text for text in texts}
    cached = get_embedding_cache().lookup(keys, count=False)
    uncached = [text for key, text in keys.items() if key not in cached]
    chosen: dict[int, Memory] = {}
    per_query = settings.INITIATION_MEMORIES_PER_QUERY
    vectors = [
        decode_vector(value, provider.dimensions)
        for value in cached.values()
        if is_valid_vector_bytes(value, provider.dimensions)
    ]
    if per_query and vectors:
        matches = get_search_backend().search_many(vectors, user_id, per_query)
        wanted = list(dict.fromkeys(match.memory_id for per_vector in matches for match in per_vector))
        found = Memory.objects.for_user(user_id).only(*RESULT_FIELDS).in_bulk(wanted)
        chosen.update((pk, found[pk]) for pk in wanted if pk in found)
    salient = (
        Memory.objects.for_user(user_id)
        .current()
        .only(*RESULT_FIELDS)
        .order_by("-salience", "-created_at", "-id")[: settings.INITIATION_SALIENT_MEMORIES]
    )
    for memory in salient:
        chosen.setdefault(memory.pk, memory)
    ordered = sorted(chosen.values(), key=lambda memory: (-memory.salience, -memory.created_at.timestamp(), memory.pk))
    return InitiationMemories(memories=ordered, context=format_context(ordered), uncached_queries=uncached)


def format_context(memories: list[Memory]) -> str:
    budget = settings.INITIATION_CONTEXT_MAX_CHARS
    lines: list[str] = []
    used = 0
    seen_texts: set[str] = set()
    for memory in memories:
        if memory.text.lower() in seen_texts:
            continue
        line = f"- {memory.text} ({when(memory.created_at)})"
        if used + len(line) + (1 if lines else 0) > budget:
            continue
        lines.append(line)
        seen_texts.add(memory.text.lower())
        used += len(line) + (1 if len(lines) > 1 else 0)
    return "\n".join(lines)


def default_answer(user_id: str = "") -> dict:
    """The answer with a default for every variable: what the agent gets when anything goes wrong."""
    answer = {
        "type": RESPONSE_TYPE,
        "dynamic_variables": {"user_id": user_id, "memory_context": "", "caller_known": False, "memory_count": 0},
    }
    if user_id:
        answer["user_id"] = user_id
    return answer


def initiation_answer(body: dict) -> dict:
    """The full answer for an initiation request body (already authenticated)."""
    caller: ResolvedCaller | None = resolve_caller(phone=body.get("caller_id"), explicit_user_id=body.get("user_id"))
    if caller is None:
        return default_answer()
    found = query_memories_for_initiation(caller.user_id)
    if found.uncached_queries:
        logger.warning("prewarm queries not cached at call start", extra={"queries": found.uncached_queries})
        from embeddings.prewarm import prewarm_in_background

        prewarm_in_background()
    answer = default_answer(caller.user_id)
    answer["dynamic_variables"].update(
        {"memory_context": found.context, "caller_known": caller.known, "memory_count": len(found.memories)}
    )
    template = settings.INITIATION_KNOWN_CALLER_FIRST_MESSAGE
    if template and caller.known:
        first_message = template.replace("{memory_context}", found.context).replace("{user_id}", caller.user_id)
        answer["conversation_config_override"] = {"agent": {"first_message": first_message}}
    return answer
