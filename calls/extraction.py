"""Turning a finished call's transcript into memories.

Default (no LLM): the caller's memorable first-person statements, kept in their own words (one memory per
turn, the turn's memorable sentences), the call summary as one episodic memory, and the data-collection
results as semantic facts. With EXTRACTION_LLM_MODEL set, `memories.llm_extraction` does it instead.
"""

import re

from calls import payloads
from memories.sectors import Sector
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
    conversation_id = payloads.conversation_id(data)
    items: list[NewMemory] = []
    for turn in payloads.caller_turns(data):
        sentences = memorable_sentences(turn.text)
        if sentences:
            items.append(
                NewMemory(text=" ".join(sentences), source_conversation_id=conversation_id, source_turns=[turn.index])
            )
    summary = payloads.call_summary(data)
    if summary:
        started = payloads.call_started_at(data)
        items.append(
            NewMemory(
                text=f"Call{f' on {started.date().isoformat()}' if started else ''}: {summary}",
                sector=Sector.EPISODIC,
                salience=0.4,
                source_conversation_id=conversation_id,
                metadata={"kind": "call_summary"},
            )
        )
    for field_id, value in payloads.data_collection(data):
        label = field_id.replace("_", " ").strip()
        items.append(
            NewMemory(
                text=f"{label}: {value}",
                sector=Sector.SEMANTIC,
                salience=0.6,
                source_conversation_id=conversation_id,
                metadata={"kind": "data_collection", "field": field_id},
            )
        )
    return items
