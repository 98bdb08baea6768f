"""Retrieval quality on LoCoMo: do the memories the query tool returns point back to the evidence turns?

    .venv/bin/python bench/locomo.py                      # all 10 conversations, local embedding provider
    .venv/bin/python bench/locomo.py --conversations 3    # the first 3
    .venv/bin/python bench/locomo.py --tiny               # 1 conversation, 2 sessions; what the test suite runs
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 EMBEDDING_MODEL=nomic-embed-text EMBEDDING_DIMENSIONS=1536 \\
        .venv/bin/python bench/locomo.py                  # any OpenAI-compatible embedding server

Reads LoCoMo (Maharana et al., ACL 2024; CC BY-NC 4.0, evaluation only: never copy it into this repository)
from ../shared/datasets/locomo10.json (`--dataset`). Runs on a throw-away embedded stack (SQLite and the
local LRU cache in a temporary folder) unless `--database-url` is given; the embedding provider comes from
the environment as in production (OPENAI_BASE_URL / OPENAI_API_KEY / EMBEDDING_MODEL / EMBEDDING_DIMENSIONS,
else the local hashing provider), and so does the extractor (EXTRACTION_LLM_MODEL, else rule-based).

1. Replay: every session is a finished call, twice - once with speaker A as the caller (user
   `locomo-{i}-a`) and speaker B as the agent, once the other way round (`locomo-{i}-b`). Each call is a
   post_call_transcription payload shaped like ElevenLabs', signed and POSTed to
   /webhooks/elevenlabs/post-call, then processed by `manage.py run_worker --batch` - the production path.
2. Floor (an extractor or ranking that answers fewer questions than this is worse than none): a
   separate store (`floor-{i}-a`/`-b`) holding every caller turn verbatim as one memory, searched by plain
   cosine (memories.search.vector_search: no ranking blend, no links).
3. Questions: every question of category 1-4 (5 = adversarial, no answer in the conversation) is asked for
   both users of its conversation; the two result lists are merged by score (the floor: by similarity) and
   cut to k. A memory points to the transcript turns it records (source conversation + turn indexes), i.e. to
   LoCoMo dia_ids; memories without turns (a call summary) point nowhere.
   - platform rows call memories.query.query_memories(limit=10, reinforce_results=False), with and without
     link expansion: no reinforcement, so the order of the questions cannot change the answers;
   - the "memory query tool" row asks through POST /tools/memory-query exactly as an agent would (link
     expansion on, and it reinforces what it returns, so salience drifts as the questions go by). It runs
     last, after every other row.

recall@k = share of a question's evidence turns among the turns of the top k memories, averaged over the
questions; any@k = share of questions with at least one evidence turn in the top k. Evidence ids that name
no turn of the conversation (a few typos in the dataset) are dropped; a question left without evidence is
not asked.
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.elevenlabs import turn as transcript_turn  # noqa: E402 - the ElevenLabs transcript turn shape

DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "locomo10.json"
WEBHOOK_SECRET = "bench-webhook-secret"
TOOL_SECRET = "bench-tool-secret"
AGENT_ID = "agent_locomo_bench"
ADVERSARIAL = 5
KS = (5, 10)
QUERY_LIMIT = max(KS)
EVIDENCE_ID = re.compile(r"D:?(\d+):0*(\d+)")
SESSION_KEY = re.compile(r"session_(\d+)")


# --- The dataset ------------------------------------------------------------------------------------------------


@dataclass
class Turn:
    speaker: str
    dia_id: str
    text: str


@dataclass
class Session:
    number: int
    started: int  # unix seconds
    turns: list[Turn]
    summary: str = ""


@dataclass
class Question:
    text: str
    evidence: set[str]
    category: int


@dataclass
class Conversation:
    index: int
    speaker_a: str
    speaker_b: str
    sessions: list[Session]
    questions: list[Question]
    dropped_evidence: int = 0  # evidence ids naming no turn of the conversation
    unanswerable: int = 0  # non-adversarial questions left without evidence


def load_conversations(path: Path, conversations: int | None = None, sessions: int | None = None) -> list[Conversation]:
    """The first `conversations` of LoCoMo, each cut to its first `sessions` sessions (questions too: only those
    whose evidence lies entirely in the sessions kept)."""
    raw = json.loads(path.read_text())
    loaded = []
    for index, sample in enumerate(raw[:conversations]):
        conversation = sample["conversation"]
        summaries = sample.get("session_summary") or {}
        numbers = sorted(
            int(match.group(1))
            for key in conversation
            if (match := SESSION_KEY.fullmatch(key)) and isinstance(conversation[key], list)
        )[:sessions]
        session_list = [
            Session(
                number=number,
                started=session_timestamp(conversation.get(f"session_{number}_date_time", "")),
                turns=[
                    Turn(speaker=turn["speaker"], dia_id=turn["dia_id"], text=turn.get("text") or "")
                    for turn in conversation[f"session_{number}"]
                ],
                summary=summaries.get(f"session_{number}_summary") or "",
            )
            for number in numbers
        ]
        all_ids = {
            turn["dia_id"]
            for key, turns in conversation.items()
            if SESSION_KEY.fullmatch(key) and isinstance(turns, list)
            for turn in turns
        }
        kept_ids = {turn.dia_id for session in session_list for turn in session.turns}
        item = Conversation(index, conversation["speaker_a"], conversation["speaker_b"], session_list, [])
        for qa in sample["qa"]:
            if qa.get("category") == ADVERSARIAL:
                continue
            evidence = normalise_evidence(qa.get("evidence") or [])
            known = evidence & all_ids
            if not known:
                item.unanswerable += 1
                continue
            if not known <= kept_ids:
                continue
            item.dropped_evidence += len(evidence - known)
            item.questions.append(Question(text=qa["question"], evidence=known, category=qa["category"]))
        loaded.append(item)
    return loaded


def normalise_evidence(evidence: list[str]) -> set[str]:
    """Dia ids as the turns spell them: "D8:6; D9:17" is two ids, "D:11:26" is D11:26, "D30:05" is D30:5."""
    return {f"D{session}:{turn}" for entry in evidence for session, turn in EVIDENCE_ID.findall(str(entry))}


def session_timestamp(text: str) -> int:
    """'1:56 pm on 8 May, 2023' as unix seconds (UTC); 0 when it does not parse."""
    try:
        return int(datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return 0


# --- Replaying the sessions as calls ----------------------------------------------------------------------------


@dataclass
class Call:
    user_id: str
    conversation_id: str
    payload: dict
    dia_ids: list[str]  # transcript turn index -> LoCoMo dia_id


def calls_for(conversation: Conversation, session: Session, with_summaries: bool = False) -> list[Call]:
    """The session as two finished calls: speaker A calling (B is the agent), then B calling (A is the agent)."""
    calls = []
    for who, caller in (("a", conversation.speaker_a), ("b", conversation.speaker_b)):
        conversation_id = f"locomo-{conversation.index}-s{session.number}-{who}"
        user_id = f"locomo-{conversation.index}-{who}"
        transcript = [
            transcript_turn("user" if turn.speaker == caller else "agent", turn.text or None, 10 * position)
            for position, turn in enumerate(session.turns)
        ]
        analysis: dict = {"call_successful": "success", "data_collection_results": {}}
        if with_summaries and session.summary:
            analysis["transcript_summary"] = session.summary
        payload = {
            "type": "post_call_transcription",
            "event_timestamp": int(time.time()),
            "data": {
                "agent_id": AGENT_ID,
                "conversation_id": conversation_id,
                "status": "done",
                "user_id": user_id,
                "transcript": transcript,
                "metadata": {
                    "start_time_unix_secs": session.started,
                    "accepted_time_unix_secs": session.started,
                    "call_duration_secs": 10 * len(transcript),
                    "phone_call": None,
                    "termination_reason": "Call ended by remote party",
                    "main_language": "en",
                },
                "analysis": analysis,
                "conversation_initiation_client_data": {
                    "dynamic_variables": {
                        "user_id": user_id,
                        "system__conversation_id": conversation_id,
                        "system__agent_id": AGENT_ID,
                    }
                },
            },
        }
        calls.append(Call(user_id, conversation_id, payload, [turn.dia_id for turn in session.turns]))
    return calls


def post_call(client, call: Call) -> int:
    """POST the call, signed, to the post-call webhook; returns the stored event's id."""
    from calls.signatures import sign

    body = json.dumps(call.payload).encode()
    response = client.post(
        "/webhooks/elevenlabs/post-call",
        data=body,
        content_type="application/json",
        headers={"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)},
    )
    answer = response.json()
    if response.status_code != 200 or answer.get("status") != "accepted":
        raise RuntimeError(f"post-call webhook answered {response.status_code} {answer} for {call.conversation_id}")
    return answer["event_id"]


def run_worker() -> None:
    from testkit.tasks import drain_task_queue

    drain_task_queue()


def check_events(event_ids: list[int]) -> None:
    from calls.models import WebhookEvent

    statuses = Counter(WebhookEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True))
    if statuses.get(WebhookEvent.Status.PROCESSED, 0) != len(event_ids):
        failed = WebhookEvent.objects.filter(pk__in=event_ids).exclude(status=WebhookEvent.Status.PROCESSED).first()
        raise RuntimeError(f"events not all processed: {dict(statuses)}; e.g. {failed.status}: {failed.last_error}")


def store_floor(user_id: str, call: Call, caller_role: str = "user") -> None:
    """Every caller turn of the call, verbatim, one memory each (embedded in one batch)."""
    from embeddings.generation import generate_embeddings_batch
    from memories.services import NewMemory, create_memories

    items = [
        NewMemory(text=turn["message"], source_conversation_id=call.conversation_id, source_turns=[index])
        for index, turn in enumerate(call.payload["data"]["transcript"])
        if turn["role"] == caller_role and turn["message"] and turn["message"].strip()
    ]
    if items:
        create_memories(user_id, items, embeddings=generate_embeddings_batch([item.text for item in items]))


# --- Asking -------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    label: str
    users: str  # "locomo" or "floor"
    hits: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KS})
    any_hits: dict[int, list[bool]] = field(default_factory=lambda: {k: [] for k in KS})
    by_category: dict[int, list[float]] = field(default_factory=dict)  # recall@10 per category
    memories: int = 0
    seconds: float = 0.0

    def record(self, question: Question, ranked_ids: list[int], dia_of: dict[int, set[str]]) -> None:
        for k in KS:
            found = set().union(*(dia_of.get(memory_id, set()) for memory_id in ranked_ids[:k]))
            covered = len(question.evidence & found)
            self.hits[k].append(covered / len(question.evidence))
            self.any_hits[k].append(covered > 0)
        self.by_category.setdefault(question.category, []).append(self.hits[max(KS)][-1])

    def summary(self) -> dict:
        return {
            "label": self.label,
            **{f"recall@{k}": statistics.fmean(self.hits[k]) if self.hits[k] else 0.0 for k in KS},
            **{f"any@{k}": statistics.fmean(self.any_hits[k]) if self.any_hits[k] else 0.0 for k in KS},
            "recall@10_by_category": {
                str(category): statistics.fmean(values) for category, values in sorted(self.by_category.items())
            },
            "memories": self.memories,
            "query_seconds": round(self.seconds, 1),
        }


def merged(results: list[list[tuple[float, int]]], limit: int) -> list[int]:
    """Memory ids of several users' (score, id) lists, best score first (ties by id), cut to `limit`."""
    ranked = sorted((item for result in results for item in result), key=lambda item: (-item[0], item[1]))
    return [memory_id for _, memory_id in ranked[:limit]]


def ask_platform(user_ids: list[str], question: str, expand_links: bool) -> list[int]:
    from memories.query import query_memories

    return merged(
        [
            [
                (item.score, item.memory.pk)
                for item in query_memories(
                    user_id, question, limit=QUERY_LIMIT, expand_links=expand_links, reinforce_results=False
                ).memories
            ]
            for user_id in user_ids
        ],
        QUERY_LIMIT,
    )


def ask_floor(user_ids: list[str], question: str) -> list[int]:
    from embeddings.generation import generate_embedding
    from memories.search import vector_search

    embedding = generate_embedding(question)
    return merged(
        [
            [(item.similarity, item.memory.pk) for item in vector_search(embedding, user_id, limit=QUERY_LIMIT)]
            for user_id in user_ids
        ],
        QUERY_LIMIT,
    )


def ask_tool(client, user_ids: list[str], question: str) -> list[int]:
    results = []
    for user_id in user_ids:
        response = client.post(
            "/tools/memory-query",
            data={"query": question, "user_id": user_id, "limit": QUERY_LIMIT},
            content_type="application/json",
            headers={"X-Memory-Secret": TOOL_SECRET},
        )
        if response.status_code != 200:
            raise RuntimeError(f"memory query tool answered {response.status_code}: {response.content[:200]!r}")
        results.append([(memory["score"], memory["id"]) for memory in response.json()["memories"]])
    return merged(results, QUERY_LIMIT)


def dia_ids_of_memories(user_ids: list[str], turn_maps: dict[str, list[str]]) -> dict[int, set[str]]:
    """Memory id -> the LoCoMo dia_ids of the transcript turns it records (empty for memories without turns)."""
    from memories.models import Memory

    rows = Memory.objects.filter(user_id__in=user_ids, superseded_by__isnull=True).values_list(
        "id", "source_conversation_id", "source_turns"
    )
    dia_of = {}
    for memory_id, conversation_id, turns in rows:
        dia_ids = turn_maps.get(conversation_id, [])
        dia_of[memory_id] = {dia_ids[turn] for turn in turns or [] if 0 <= turn < len(dia_ids)}
    return dia_of


def memory_ids_of(user_id: str) -> list[int]:
    from memories.models import Memory

    return list(Memory.objects.for_user(user_id).current().values_list("id", flat=True))


# --- Setup and the run --------------------------------------------------------------------------------------------


def setup_django(data_dir: str, database_url: str | None) -> None:
    """Configure the settings from the environment (embedded stack unless `database_url`), migrate."""
    for name in ("DATABASE_URL", "REDIS_URL", "EMBEDDING_CACHE_REDIS_URL", "EMBEDDING_CACHE_PATH"):
        os.environ.pop(name, None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(
        {
            "DATA_DIR": data_dir,
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "READ_DOTENV": "0",
            "TASKS_IN_PROCESS_WORKER": "0",
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "ELEVENLABS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "ELEVENLABS_TOOL_SECRETS": TOOL_SECRET,
            "ELEVENLABS_TOOL_SECRET_HEADER": "X-Memory-Secret",
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "0",
        }
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def forget_previous_run(conversations: list[Conversation]) -> None:
    """On a reused database: the benchmark's own users and events from an earlier run go first."""
    from calls.models import WebhookEvent
    from memories.services import forget_user

    for conversation in conversations:
        for prefix in ("locomo", "floor"):
            for who in "ab":
                forget_user(f"{prefix}-{conversation.index}-{who}")
    WebhookEvent.objects.filter(conversation_id__startswith="locomo-").delete()


def run(args: argparse.Namespace) -> dict:
    from django.conf import settings
    from django.test import Client

    from embeddings.providers import get_provider
    from memories.models import Memory

    started = time.perf_counter()
    conversations = load_conversations(
        args.dataset, conversations=1 if args.tiny else args.conversations, sessions=2 if args.tiny else None
    )
    forget_previous_run(conversations)
    client = Client()
    turn_maps: dict[str, list[str]] = {}

    replay_started = time.perf_counter()
    event_ids: list[int] = []
    pending = 0
    for conversation in conversations:
        for session in conversation.sessions:
            for call in calls_for(conversation, session, with_summaries=args.summaries):
                turn_maps[call.conversation_id] = call.dia_ids
                event_ids.append(post_call(client, call))
                pending += 1
                store_floor(call.user_id.replace("locomo-", "floor-", 1), call)
            if pending >= args.worker_every:
                run_worker()
                pending = 0
    run_worker()
    check_events(event_ids)
    replay_seconds = time.perf_counter() - replay_started

    platform_users = {c.index: [f"locomo-{c.index}-a", f"locomo-{c.index}-b"] for c in conversations}
    floor_users = {c.index: [f"floor-{c.index}-a", f"floor-{c.index}-b"] for c in conversations}
    every = {
        "locomo": [user for users in platform_users.values() for user in users],
        "floor": [user for users in floor_users.values() for user in users],
    }
    dia_of = {name: dia_ids_of_memories(users, turn_maps) for name, users in every.items()}
    stored = {name: Memory.objects.filter(user_id__in=users).current().count() for name, users in every.items()}
    caller_turns = sum(len(session.turns) for conversation in conversations for session in conversation.sessions)
    # Dia ids repeat across conversations ("D1:3" is in every one): coverage counts (conversation, dia id).
    evidence_turns = {(c.index, turn) for c in conversations for q in c.questions for turn in q.evidence}
    stored_turns = {
        name: {
            (c.index, turn)
            for c in conversations
            for user_id in (floor_users if name == "floor" else platform_users)[c.index]
            for turn in set().union(*(dia_of[name][pk] for pk in memory_ids_of(user_id)))
        }
        for name in dia_of
    }

    variants = [
        (Variant("floor: every caller turn verbatim, plain cosine", "floor"), None),
        (Variant("platform, without link expansion", "locomo"), False),
        (Variant("platform, with link expansion", "locomo"), True),
    ]
    if not args.no_tool:
        variants.append((Variant("memory query tool over HTTP (links on, reinforcing)", "locomo"), "tool"))
    for variant, mode in variants:
        variant.memories = stored[variant.users]
        variant_started = time.perf_counter()
        for conversation in conversations:
            users = floor_users if variant.users == "floor" else platform_users
            for question in conversation.questions:
                if mode is None:
                    ranked = ask_floor(users[conversation.index], question.text)
                elif mode == "tool":
                    ranked = ask_tool(client, users[conversation.index], question.text)
                else:
                    ranked = ask_platform(users[conversation.index], question.text, expand_links=mode)
                variant.record(question, ranked, dia_of[variant.users])
        variant.seconds = time.perf_counter() - variant_started

    provider = get_provider().describe()
    return {
        "provider": provider,
        "extractor": f"LLM ({settings.EXTRACTION_LLM_MODEL})" if settings.EXTRACTION_LLM_MODEL else "rule-based",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "conversations": len(conversations),
        "sessions": sum(len(c.sessions) for c in conversations),
        "calls": len(event_ids),
        "turns": caller_turns,
        "questions": sum(len(c.questions) for c in conversations),
        "questions_without_evidence": sum(c.unanswerable for c in conversations),
        "evidence_ids_dropped": sum(c.dropped_evidence for c in conversations),
        "summaries": args.summaries,
        "evidence_turns_stored": {
            name: len(evidence_turns & turns) / max(1, len(evidence_turns)) for name, turns in stored_turns.items()
        },
        "turns_stored": {name: len(turns) / max(1, caller_turns) for name, turns in stored_turns.items()},
        "replay_seconds": round(replay_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "results": [variant.summary() for variant, _ in variants],
    }


def print_report(report: dict) -> None:
    provider = report["provider"]
    described = f"{provider['provider']} / {provider['model']} / {provider['dimensions']} dimensions"
    if provider.get("base_url"):
        described += f" ({provider['base_url']})"
    print()
    print(
        f"LoCoMo retrieval: embeddings {described}; extractor {report['extractor']}; {report['database']}; "
        f"{report['conversations']} conversations, {report['sessions']} sessions ({report['calls']} calls, "
        f"{report['turns']:,} turns), {report['questions']:,} questions (categories 1-4; "
        f"{report['questions_without_evidence']} without usable evidence skipped); call summaries "
        f"{'on' if report['summaries'] else 'off'}; wall time {report['wall_seconds']:.1f} s "
        f"(replay {report['replay_seconds']:.1f} s)"
    )
    evidence, turns = report["evidence_turns_stored"], report["turns_stored"]
    print(
        f"evidence turns stored as some memory: floor {evidence['floor']:.1%}, platform {evidence['locomo']:.1%}; "
        f"all turns: floor {turns['floor']:.1%}, platform {turns['locomo']:.1%}"
    )
    print()
    print("| variant | recall@5 | recall@10 | any-evidence@5 | any-evidence@10 | memories stored | query s |")
    print("|---|---|---|---|---|---|---|")
    for row in report["results"]:
        print(
            f"| {row['label']} | {row['recall@5']:.3f} | {row['recall@10']:.3f} | {row['any@5']:.3f} | "
            f"{row['any@10']:.3f} | {row['memories']:,} | {row['query_seconds']:.1f} |"
        )
    categories = sorted({category for row in report["results"] for category in row["recall@10_by_category"]})
    print()
    print("| recall@10 by question category | " + " | ".join(f"category {c}" for c in categories) + " |")
    print("|---" * (1 + len(categories)) + "|")
    for row in report["results"]:
        cells = " | ".join(
            f"{row['recall@10_by_category'][c]:.3f}" if c in row["recall@10_by_category"] else "-" for c in categories
        )
        print(f"| {row['label']} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help=f"default {DEFAULT_DATASET}")
    parser.add_argument("--conversations", type=int, default=None, help="the first N conversations (default all)")
    parser.add_argument(
        "--tiny", action="store_true", help="1 conversation, its first 2 sessions and their questions (seconds)"
    )
    parser.add_argument("--summaries", action="store_true", help="send LoCoMo's session summary as the call summary")
    parser.add_argument("--no-tool", action="store_true", help="skip the memory query tool row (HTTP, reinforcing)")
    parser.add_argument("--worker-every", type=int, default=20, help="run the worker every N calls (default 20)")
    parser.add_argument("--database-url", help="a database to use instead of a throw-away SQLite file")
    parser.add_argument("--data-dir", help="keep DATA_DIR (the SQLite file, the embedding cache) here")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args()
    if not args.dataset.is_file():
        parser.error(f"LoCoMo not found at {args.dataset} (see ../shared/datasets/README.md); pass --dataset")

    with tempfile.TemporaryDirectory(prefix="locomo-bench-") as temporary:
        data_dir = args.data_dir or temporary
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        setup_django(data_dir, args.database_url)
        report = run(args)
        from django.db import connections

        connections.close_all()
    print_report(report)
    if args.json:
        print()
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
