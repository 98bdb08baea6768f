"""How a query result is answered to an LLM (the ElevenLabs tool) or an operator: compact, readable, nothing
it does not need."""

from datetime import datetime

from django.utils import timezone

from memories.query import QueryResult

SUMMARY_TEXT_CHARS = 90


def when(moment: datetime, now: datetime | None = None) -> str:
    """'2026-11-20, 4 days ago' — the date for precision, the distance for the conversation."""
    now = now or timezone.now()
    days = (now.date() - moment.date()).days
    if days <= 0:
        relative = "today"
    elif days == 1:
        relative = "yesterday"
    elif days < 60:
        relative = f"{days} days ago"
    elif days < 730:
        relative = f"{days // 30} months ago"
    else:
        relative = f"{days // 365} years ago"
    return f"{moment.date().isoformat()}, {relative}"


def tool_answer(result: QueryResult) -> dict:
    memories = [
        {
            "id": item.memory.pk,
            "text": item.memory.text,
            "sector": item.memory.sector,
            "score": round(item.score, 3),
            "when": when(item.memory.occurred_at),
        }
        for item in result.memories
    ]
    return {"memories": memories, "summary": summary_line(result)}


def summary_line(result: QueryResult) -> str:
    if not result.memories:
        return "No memories of this caller match the question."
    best = result.memories[0].memory.text
    if len(best) > SUMMARY_TEXT_CHARS:
        best = best[: SUMMARY_TEXT_CHARS - 1] + "…"
    count = len(result.memories)
    noun = "memory" if count == 1 else "memories"
    return f"{count} {noun} found; most relevant: {best}"


def server_timing(timings_ms: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={duration}" for name, duration in timings_ms.items())
