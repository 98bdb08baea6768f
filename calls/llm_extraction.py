"""Memory extraction with an LLM: OpenAI chat completions with structured output, reconciled against the
user's similar memories (add, reinforce, or supersede a contradicted one).

The model sees the caller's turns (numbered) and the user's existing memories most related to this call
(numbered by memory id), and answers a JSON object that must match FACTS_SCHEMA. Target ids outside the
memories it was shown are ignored, so a model mistake can never touch another user's memories.
"""

import json
from dataclasses import dataclass

import openai
from django.conf import settings

from calls import payloads
from embeddings.generation import generate_embedding
from memories.models import Memory
from memories.owners import Owner
from memories.search import vector_search
from memories.sectors import Sector
from memories.services import NewMemory

ACTIONS = ("add", "reinforce", "supersede")
FACTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["facts"],
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["text", "sector", "importance", "turns", "action", "target_id"],
                "properties": {
                    "text": {"type": "string"},
                    "sector": {"type": "string", "enum": list(Sector.values)},
                    "importance": {"type": "number"},
                    "turns": {"type": "array", "items": {"type": "integer"}},
                    "action": {"type": "string", "enum": list(ACTIONS)},
                    "target_id": {"type": ["integer", "null"]},
                },
            },
        }
    },
}
SYSTEM_PROMPT = (
    "You extract long-term memories about the CALLER from a phone call transcript, for a voice agent that "
    "will talk to them again. Keep facts about the caller: preferences, facts about themselves and their "
    "family, plans, problems, feelings, and what happened. One fact per item, in the third person or the "
    "caller's own words, short and self-contained. importance is 0..1. turns are the transcript turn numbers "
    "the fact comes from. For each fact compare with EXISTING MEMORIES: action 'reinforce' with target_id when "
    "it repeats one, 'supersede' with target_id when it contradicts or updates one (a new address, a changed "
    "preference), otherwise 'add' with target_id null. Never invent facts."
)
RELATED_MEMORIES = 20


@dataclass
class ExtractedFact:
    memory: NewMemory
    action: str
    target: Memory | None


def build_client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY or "unused",
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.EXTRACTION_LLM_TIMEOUT,
        max_retries=2,
    )


def related_memories(owner: Owner, caller_text: str) -> list[Memory]:
    """The user's derived memories and notes nearest the call: what the model may reinforce or supersede (the
    caller's own words are kept whatever the model thinks of them)."""
    if not caller_text.strip():
        return []
    embedding = generate_embedding(caller_text[: settings.EMBEDDING_MAX_INPUT_CHARS])
    nearest = vector_search(embedding, owner, limit=RELATED_MEMORIES * 3)
    return [item.memory for item in nearest if item.memory.kind != Memory.Kind.UTTERANCE][:RELATED_MEMORIES]


def extract_with_llm(owner: Owner, data: dict, model: str) -> list[ExtractedFact]:
    """Facts of the call, by LLM `model`, with what to do with each; raises openai.APIError on provider failure."""
    conversation_id = payloads.conversation_id(data)
    started = payloads.call_started_at(data)
    transcript = payloads.transcript_lines(data)
    lines = [f"[{line.index}] {line.speaker}: {line.text}" for line in transcript]
    caller_text = " ".join(line.text for line in transcript if line.speaker == "caller")
    existing = related_memories(owner, caller_text)
    existing_block = "\n".join(f"#{memory.pk}: {memory.text}" for memory in existing) or "(none)"
    response = build_client().chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"EXISTING MEMORIES:\n{existing_block}\n\nTRANSCRIPT:\n" + "\n".join(lines)},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "facts", "strict": True, "schema": FACTS_SCHEMA},
        },
    )
    content = response.choices[0].message.content or "{}"
    facts = json.loads(content).get("facts", [])
    by_id = {memory.pk: memory for memory in existing}
    extracted = []
    for fact in facts if isinstance(facts, list) else []:
        text = fact.get("text") if isinstance(fact, dict) else None
        if not isinstance(text, str) or not text.strip():
            continue
        sector = fact.get("sector") if fact.get("sector") in Sector.values else None
        importance = fact.get("importance")
        salience = min(1.0, max(0.1, float(importance))) if isinstance(importance, int | float) else 0.5
        turns = [turn for turn in fact.get("turns") or [] if isinstance(turn, int) and turn >= 0]
        action = fact.get("action") if fact.get("action") in ACTIONS else "add"
        target = by_id.get(fact.get("target_id")) if action != "add" else None
        if target is None:
            action = "add"
        extracted.append(
            ExtractedFact(
                memory=NewMemory(
                    text=text.strip(),
                    kind=Memory.Kind.FACT,
                    sector=sector,
                    salience=salience,
                    source_conversation_id=conversation_id,
                    source_turns=turns,
                    occurred_at=started,
                    metadata={"extracted_by": model},
                ),
                action=action,
                target=target,
            )
        )
    return extracted
