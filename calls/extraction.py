"""Turning a finished call into memories: everything the caller said, in their own words, and what the call
adds to it.

1. Utterances, the floor of what we remember: every caller turn with content becomes a memory, verbatim, with
   the conversation, the turn's index and when it was said (the call's start + the turn's time in the call). A
   turn is skipped only when it carries nothing: a courtesy or a filler and nothing else ("ok", "thanks, bye"),
   a rule bench/locomo.py checks drops no evidence turn. A turn longer than MEMORY_UTTERANCE_CHUNK_CHARS is kept
   in several memories, cut between sentences (the embedding models read a few hundred words at most), never
   truncated.
2. Derived memories on top: the call's summary and its data-collection results (and, with EXTRACTION_LLM_MODEL,
   the facts an LLM extracts, calls.llm_extraction), dated at the call's start.

Earlier versions kept only "memorable" sentences of the caller: on LoCoMo that dropped 27% of caller turns,
29 of them evidence, and answered fewer questions than storing every turn (docs/benchmarks.md).
"""

import re
from datetime import datetime, timedelta

from django.conf import settings

from calls import payloads
from memories.models import Memory
from memories.sectors import Sector
from memories.services import NewMemory

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
# A turn that is only courtesies and fillers says nothing to remember.
NOTHING_WORDS = frozenset(
    "ok okay k yes yeah yep yup no nope nah sure right alright great cool perfect fine thanks thank you thx ty bye "
    "goodbye hello hi hey um uh uhm hmm mm mhm ah oh wow got it sounds good see ya".split()
)
WORD = re.compile(r"[\w']+", re.UNICODE)


def carries_nothing(text: str) -> bool:
    """True for a turn made only of courtesies and fillers ("Okay, thanks!"); one other word ("Hi Jo") is enough
    to keep it."""
    words = WORD.findall(text.lower())
    return all(word in NOTHING_WORDS for word in words)


def utterance_chunks(text: str, limit: int | None = None) -> list[str]:
    """`text` whole when it fits in `limit` characters, else cut between sentences (or, for one long sentence,
    between words) into pieces of at most `limit` characters. Nothing is dropped."""
    limit = limit or settings.MEMORY_UTTERANCE_CHUNK_CHARS
    text = " ".join(text.split())
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(text):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        pieces.append(sentence)
    chunks: list[str] = []
    for piece in filter(None, pieces):
        if chunks and len(chunks[-1]) + 1 + len(piece) <= limit:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    return chunks


def extract_memories_from_transcript(data: dict) -> list[NewMemory]:
    """Memories from the `data` of a post_call_transcription event (never calls a model)."""
    return [*utterances(data), *derived_memories(data)]


def utterances(data: dict) -> list[NewMemory]:
    conversation_id = payloads.conversation_id(data)
    started = payloads.call_started_at(data)
    items = []
    for turn in payloads.caller_turns(data):
        if carries_nothing(turn.text):
            continue
        said_at = _said_at(started, turn.seconds_into_call)
        for chunk in utterance_chunks(turn.text):
            items.append(
                NewMemory(
                    text=chunk,
                    kind=Memory.Kind.UTTERANCE,
                    source_conversation_id=conversation_id,
                    source_turns=[turn.index],
                    occurred_at=said_at,
                )
            )
    return items


def derived_memories(data: dict) -> list[NewMemory]:
    """The call's summary and data-collection results, dated at the call's start."""
    conversation_id = payloads.conversation_id(data)
    started = payloads.call_started_at(data)
    caller_turns = [turn.index for turn in payloads.caller_turns(data)]
    items = []
    summary = payloads.call_summary(data)
    if summary:
        items.append(
            NewMemory(
                text=f"Call{f' on {started.date().isoformat()}' if started else ''}: {summary}",
                kind=Memory.Kind.SUMMARY,
                sector=Sector.EPISODIC,
                salience=0.6,  # above an utterance's 0.5: what the initiation's context shows first
                source_conversation_id=conversation_id,
                source_turns=caller_turns,
                occurred_at=started,
            )
        )
    for field_id, value in payloads.data_collection(data):
        label = field_id.replace("_", " ").strip()
        items.append(
            NewMemory(
                text=f"{label}: {value}",
                kind=Memory.Kind.DATA,
                sector=Sector.SEMANTIC,
                salience=0.6,
                source_conversation_id=conversation_id,
                source_turns=caller_turns,
                occurred_at=started,
                metadata={"field": field_id},
            )
        )
    return items


def _said_at(started: datetime | None, seconds: float | None) -> datetime | None:
    if started is None:
        return None
    return started + timedelta(seconds=seconds or 0)
