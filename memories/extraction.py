"""Turning a finished call's transcript into memories.

Default (no LLM): the caller's memorable first-person statements, kept in their own words (one memory per
turn, the turn's memorable sentences), the call summary as one episodic memory, and the data-collection
results as semantic facts. With EXTRACTION_LLM_MODEL set, `memories.llm_extraction` does it instead.
"""

import re
from datetime import UTC, datetime

from memories.sectors import Sector, classify_query_sectors
from memories.services import NewMemory

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|our|ours|us)\b", re.IGNORECASE)
MEMORABLE = re.compile(
    r"\b("
    r"prefer\w*|like[sd]?|love[sd]?|hate[sd]?|enjoy\w*|favou?rite|can't stand|allergic|vegetarian|vegan|"
    r"am|was|work\w*|live[sd]?|moved|born|married|divorced|retired|studying|student|job|company|"
    r"have|had|has|own\w*|son|daughter|wife|husband|partner|kids?|children|dog|cat|family|friend\w*|"
    r"plan\w*|going to|gonna|will|want\w*|need\w*|hope\w*|intend\w*|next (week|month|year)|tomorrow|trip|"
    r"problem|issue|broken|error|can't|cannot|doesn't|won't|not working|complain\w*|refund|charged|bill\w*|"
    r"feel\w*|felt|happy|sad|angry|upset|frustrat\w*|worried|anxious|excited|disappointed|stressed|"
    r"went|visited|started|finished|bought|joined|signed up|cancel\w*|ordered|booked|called"
    r")\b",
    re.IGNORECASE,
)
FILLER = re.compile(
    r"^(ok(ay)?|yes|yeah|yep|yup|no|nope|sure|thanks?( you)?( so much)?|thank you|bye|good ?bye|hello|hi|hey|"
    r"uh+|um+|hmm+|right|great|cool|perfect|alright|got it|sounds good|of course)[\s.!,]*$",
    re.IGNORECASE,
)
# Short reactions ("Wow, nice job!", "I understand, Joanna.") carry no fact about the caller; stored, they
# match every question that names the person and crowd out real memories (measured on LoCoMo).
PLEASANTRY = re.compile(
    r"^(wow|oh|aw+|nice|great|awesome|amazing|cool|congrat\w*|thanks?|thank you|i understand|i see|i know|"
    r"i agree|i bet|that's|that is|sounds|good (job|luck)|well done|so (cool|nice|great)|me too|same)\b",
    re.IGNORECASE,
)
PLEASANTRY_MAX_WORDS = 6
MIN_WORDS = 3
CALLER_ROLE = "user"


def memorable_sentences(message: str) -> list[str]:
    """The sentences of a caller turn worth remembering, verbatim and in order."""
    kept = []
    for sentence in SENTENCE_END.split(message.strip()):
        sentence = sentence.strip()
        words = len(sentence.split())
        if not sentence or FILLER.match(sentence) or words < MIN_WORDS:
            continue
        if words <= PLEASANTRY_MAX_WORDS and PLEASANTRY.match(sentence):
            continue
        personal = FIRST_PERSON.search(sentence)
        notable = MEMORABLE.search(sentence)
        if sentence.endswith("?") and not (personal and notable):
            continue
        if personal or notable:
            kept.append(sentence)
    return kept


def extract_memories_from_transcript(data: dict) -> list[NewMemory]:
    """Memories from the `data` of a post_call_transcription event (rule-based; never calls a model).

    Every memory records the conversation id and the transcript turn indexes it came from.
    """
    conversation_id = str(data.get("conversation_id") or "")
    transcript = data.get("transcript") or []
    items: list[NewMemory] = []
    for index, turn in enumerate(transcript):
        if not isinstance(turn, dict) or turn.get("role") != CALLER_ROLE:
            continue
        message = turn.get("message")
        if not isinstance(message, str) or not message.strip():
            continue
        sentences = memorable_sentences(message)
        if sentences:
            items.append(
                NewMemory(text=" ".join(sentences), source_conversation_id=conversation_id, source_turns=[index])
            )
    analysis = data.get("analysis") or {}
    summary = analysis.get("transcript_summary") if isinstance(analysis, dict) else None
    if isinstance(summary, str) and summary.strip():
        items.append(
            NewMemory(
                text=f"Call{_call_date(data)}: {summary.strip()}",
                sector=Sector.EPISODIC,
                salience=0.4,
                source_conversation_id=conversation_id,
                metadata={"kind": "call_summary"},
            )
        )
    results = analysis.get("data_collection_results") if isinstance(analysis, dict) else None
    if isinstance(results, dict):
        for field_id, result in results.items():
            value = result.get("value") if isinstance(result, dict) else None
            if value in (None, "", [], {}):
                continue
            label = str(field_id).replace("_", " ").strip()
            items.append(
                NewMemory(
                    text=f"{label}: {value}",
                    sector=Sector.SEMANTIC,
                    salience=0.6,
                    source_conversation_id=conversation_id,
                    metadata={"kind": "data_collection", "field": str(field_id)},
                )
            )
    for item in items:
        if item.sector is None:
            guess = classify_query_sectors(item.text)
            item.sector = guess.primary
    return items


def _call_date(data: dict) -> str:
    metadata = data.get("metadata") or {}
    start = metadata.get("start_time_unix_secs") if isinstance(metadata, dict) else None
    if isinstance(start, int | float) and start > 0:
        return " on " + datetime.fromtimestamp(start, UTC).date().isoformat()
    return ""
