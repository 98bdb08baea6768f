"""Retrieval quality on LoCoMo, as the product sees it: do the memories the tool returns hold the evidence?

    .venv/bin/python bench/locomo.py                      # all 10 conversations, the local semantic model
    .venv/bin/python bench/locomo.py --conversations 3    # the first 3
    .venv/bin/python bench/locomo.py --tiny               # 1 conversation, 2 sessions; what the test suite runs
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 EMBEDDING_MODEL=nomic-embed-text EMBEDDING_DIMENSIONS=768 \\
        .venv/bin/python bench/locomo.py                  # any OpenAI-compatible embedding server

Reads LoCoMo (Maharana et al., ACL 2024; CC BY-NC 4.0, evaluation only: never copy it into this repository)
from ../shared/datasets/locomo10.json (`--dataset`). Runs on a throw-away embedded stack (SQLite and the local
LRU cache in a temporary folder) unless `--database-url` (and `--redis-url`) is given; the embedding provider
comes from the environment as in production (default: the local all-MiniLM-L6-v2).

1. Replay, through the real endpoints: gunicorn serves the project and `run_worker` processes what it stores.
   Every session is a finished call, twice: once with speaker A as the caller (user `locomo-{i}-a`) and speaker
   B as the agent, once the other way round. Each is an ElevenLabs post_call_transcription payload, signed and
   POSTed to /webhooks/elevenlabs/post-call by 4 concurrent senders, with LoCoMo's session summary as the call's
   summary (ElevenLabs always sends one).
2. Floors, stored beside in the same database: every caller turn verbatim, one memory each (`floor-{i}-a`/`-b`),
   searched (a) by plain cosine, (b) by cosine and BM25 fused. A platform that answers fewer questions than the
   floor is worse than storing the transcript.
3. Questions: every question of categories 1-4 (5 is adversarial: no answer in the conversation) is asked for
   the speaker it names (both, merged by score, when it names both or neither). The platform's rows run
   memories.query.query_memories in this process with each ranking term switched on alone (the ablation), without
   reinforcement so the order of the questions cannot matter; the last row asks the real tool over HTTP, as an
   agent does (reinforcing as it answers), and times it.

recall@k = share of a question's evidence turns among the turns of the top k memories, averaged over the
questions; any@k = share of questions with at least one evidence turn in the top k. Only the caller's own words
(utterance memories) count as holding a turn: a call summary points at every turn of its call, and crediting it
with all of them would reward summaries for what they do not say. Evidence ids that name no turn of the
conversation (a few typos in the dataset) are dropped; a question left without evidence is not asked.
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memories.owners import default_owner  # noqa: E402 - plain Python, no Django needed
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


def calls_for(conversation: Conversation, session: Session, with_summaries: bool = True) -> list[Call]:
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


def post(url: str, path: str, body: bytes, headers: dict) -> tuple[int, float, dict]:
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json", **headers})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, time.perf_counter() - started, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, time.perf_counter() - started, {"error": error.read()[:300].decode(errors="replace")}


def replay(url: str, calls: list[Call]) -> list[int]:
    """POST every call, signed, from 4 senders; the stored events' ids."""
    from calls.signatures import sign

    def send(call: Call) -> int:
        body = json.dumps(call.payload).encode()
        status, _, answer = post(
            url, "/webhooks/elevenlabs/post-call", body, {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)}
        )
        if status != 200 or answer.get("status") != "accepted":
            raise RuntimeError(f"post-call webhook answered {status} {answer} for {call.conversation_id}")
        return answer["event_id"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(send, calls))


def wait_until_processed(event_ids: list[int], timeout: float) -> None:
    from calls.models import WebhookEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = Counter(WebhookEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True))
        if statuses.get(WebhookEvent.Status.PROCESSED, 0) == len(event_ids):
            return
        if statuses.get(WebhookEvent.Status.FAILED):
            failed = WebhookEvent.objects.filter(pk__in=event_ids, status=WebhookEvent.Status.FAILED).first()
            raise RuntimeError(f"event {failed.pk} failed: {failed.last_error}")
        time.sleep(0.5)
    raise RuntimeError(f"events not all processed after {timeout:.0f} s: {dict(statuses)}")


def store_floor(call: Call) -> None:
    """Every caller turn of the call, verbatim, one memory each (embedded in one batch)."""
    from memories.models import Memory
    from memories.services import NewMemory, create_memories

    items = [
        NewMemory(
            text=turn["message"],
            kind=Memory.Kind.UTTERANCE,
            source_conversation_id=call.conversation_id,
            source_turns=[index],
        )
        for index, turn in enumerate(call.payload["data"]["transcript"])
        if turn["role"] == "user" and turn["message"] and turn["message"].strip()
    ]
    if items:
        create_memories(default_owner(call.user_id.replace("locomo-", "floor-", 1)), items)


# --- Asking -------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    label: str
    users: str  # "locomo" or "floor"
    ask: Callable[[list[str], str], list[int]]
    hits: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KS})
    any_hits: dict[int, list[bool]] = field(default_factory=lambda: {k: [] for k in KS})
    by_category: dict[int, dict[int, list[float]]] = field(default_factory=dict)  # category -> k -> recalls
    memories: int = 0
    seconds: float = 0.0

    def record(self, question: Question, ranked_ids: list[int], dia_of: dict[int, set[str]]) -> None:
        for k in KS:
            found = set().union(*(dia_of.get(memory_id, set()) for memory_id in ranked_ids[:k]))
            covered = len(question.evidence & found)
            self.hits[k].append(covered / len(question.evidence))
            self.any_hits[k].append(covered > 0)
            self.by_category.setdefault(question.category, {}).setdefault(k, []).append(self.hits[k][-1])

    def summary(self) -> dict:
        return {
            "label": self.label,
            **{f"recall@{k}": statistics.fmean(self.hits[k]) if self.hits[k] else 0.0 for k in KS},
            **{f"any@{k}": statistics.fmean(self.any_hits[k]) if self.any_hits[k] else 0.0 for k in KS},
            **{
                f"recall@{k}_by_category": {
                    str(category): statistics.fmean(values[k]) for category, values in sorted(self.by_category.items())
                }
                for k in KS
            },
            "memories": self.memories,
            "query_seconds": round(self.seconds, 1),
        }


def merged(results: list[list[tuple[float, int]]], limit: int) -> list[int]:
    """Memory ids of several users' (score, id) lists, best score first (ties by id), cut to `limit`."""
    ranked = sorted((item for result in results for item in result), key=lambda item: (-item[0], item[1]))
    return [memory_id for _, memory_id in ranked[:limit]]


def asking_the_platform(**retrieval: object) -> Callable[[list[str], str], list[int]]:
    from memories.query import Retrieval, query_memories

    chosen = Retrieval.from_settings(**retrieval)

    def ask(user_ids: list[str], question: str) -> list[int]:
        return merged(
            [
                [
                    (item.score, item.memory.pk)
                    for item in query_memories(
                        default_owner(user_id), question, limit=QUERY_LIMIT, reinforce_results=False, retrieval=chosen
                    ).memories
                ]
                for user_id in user_ids
            ],
            QUERY_LIMIT,
        )

    return ask


def ask_by_cosine(user_ids: list[str], question: str) -> list[int]:
    from embeddings.generation import generate_embedding
    from memories.search import vector_search

    embedding = generate_embedding(question)
    return merged(
        [
            [
                (item.similarity, item.memory.pk)
                for item in vector_search(embedding, default_owner(user_id), limit=QUERY_LIMIT)
            ]
            for user_id in user_ids
        ],
        QUERY_LIMIT,
    )


def asking_the_tool(url: str, latencies: list[float]) -> Callable[[list[str], str], list[int]]:
    def ask(user_ids: list[str], question: str) -> list[int]:
        results = []
        for user_id in user_ids:
            body = json.dumps({"query": question, "user_id": user_id, "limit": QUERY_LIMIT}).encode()
            status, seconds, answer = post(url, "/tools/memory-query", body, {"X-Memory-Secret": TOOL_SECRET})
            if status != 200:
                raise RuntimeError(f"memory query tool answered {status}: {answer}")
            latencies.append(seconds)
            results.append([(memory["score"], memory["id"]) for memory in answer["memories"]])
        return merged(results, QUERY_LIMIT)

    return ask


def users_asked(conversation: Conversation, question: Question, prefix: str) -> list[str]:
    """The speaker the question names; both when it names both or neither."""
    names = {
        "a": conversation.speaker_a.split()[0].lower(),
        "b": conversation.speaker_b.split()[0].lower(),
    }
    words = set(re.findall(r"[a-z]+", question.text.lower()))
    named = [who for who, name in names.items() if name in words]
    return [f"{prefix}-{conversation.index}-{who}" for who in (named if len(named) == 1 else ["a", "b"])]


def dia_ids_of_memories(user_ids: list[str], turn_maps: dict[str, list[str]]) -> dict[int, set[str]]:
    """Memory id -> the LoCoMo dia_ids of the turns it holds: an utterance's own turns and the same words said
    again in other calls; nothing for derived memories (see the module's docstring)."""
    from memories.models import Memory

    rows = Memory.objects.filter(user_id__in=user_ids, superseded_by__isnull=True).values_list(
        "id", "kind", "source_conversation_id", "source_turns", "metadata"
    )
    dia_of = {}
    for memory_id, kind, conversation_id, turns, metadata in rows:
        if kind != Memory.Kind.UTTERANCE:
            dia_of[memory_id] = set()
            continue
        places = [(conversation_id, turns or [])]
        places += [
            (again["conversation_id"], again.get("turns") or []) for again in (metadata or {}).get("said_again", [])
        ]
        dia_of[memory_id] = {
            turn_maps[where][turn]
            for where, turn_list in places
            for turn in turn_list
            if where in turn_maps and 0 <= turn < len(turn_maps[where])
        }
    return dia_of


# --- Setup and the run --------------------------------------------------------------------------------------------


def stack_env(data_dir: str, database_url: str | None, redis_url: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "EMBEDDING_CACHE_REDIS_URL", "EMBEDDING_CACHE_PATH")
    }
    env.update(
        {
            "DATA_DIR": data_dir,
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "READ_DOTENV": "0",
            "DEBUG": "0",
            "TASKS_IN_PROCESS_WORKER": "0",
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "ELEVENLABS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "ELEVENLABS_TOOL_SECRETS": TOOL_SECRET,
            "ELEVENLABS_TOOL_SECRET_HEADER": "X-Memory-Secret",
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            "WEB_WORKERS": "2",
            "WEB_THREADS": "4",
            "TOOL_TIME_BUDGET_SECONDS": "30",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def forget_previous_run(conversations: list[Conversation]) -> None:
    """On a reused database: the benchmark's own users and events from an earlier run go first."""
    from calls.models import WebhookEvent
    from memories.services import forget_user

    for conversation in conversations:
        for prefix in ("locomo", "floor"):
            for who in "ab":
                forget_user(default_owner(f"{prefix}-{conversation.index}-{who}"))
    WebhookEvent.objects.filter(conversation_id__startswith="locomo-").delete()


def run(args: argparse.Namespace, env: dict[str, str]) -> dict:
    from django.conf import settings

    from calls.extraction import carries_nothing
    from embeddings.providers import get_provider
    from memories.models import Memory
    from testkit.processes import Gunicorn, Worker

    started = time.perf_counter()
    conversations = load_conversations(
        args.dataset, conversations=1 if args.tiny else args.conversations, sessions=2 if args.tiny else None
    )
    forget_previous_run(conversations)
    calls = [
        call
        for conversation in conversations
        for session in conversation.sessions
        for call in calls_for(conversation, session, with_summaries=not args.no_summaries)
    ]
    turn_maps = {call.conversation_id: call.dia_ids for call in calls}
    tool_latencies: list[float] = []
    with Gunicorn(env) as server:
        worker = Worker(env, str(Path(env["DATA_DIR"]) / "bench-worker-heartbeat.json"), interval=0.2).start()
        try:
            replay_started = time.perf_counter()
            event_ids = replay(server.url, calls)
            for call in calls:
                store_floor(call)
            wait_until_processed(event_ids, timeout=max(120.0, 2.0 * len(calls)))
            replay_seconds = time.perf_counter() - replay_started
        finally:
            worker.stop()

        users = {
            name: [f"{name}-{c.index}-{who}" for c in conversations for who in "ab"] for name in ("locomo", "floor")
        }
        dia_of = {name: dia_ids_of_memories(user_ids, turn_maps) for name, user_ids in users.items()}
        stored = {name: Memory.objects.filter(user_id__in=ids).current().count() for name, ids in users.items()}
        utterances = Memory.objects.filter(user_id__in=users["locomo"], kind=Memory.Kind.UTTERANCE).count()
        # Dia ids repeat across conversations ("D1:3" is in every one): coverage counts (conversation, dia id).
        evidence = {(c.index, turn) for c in conversations for q in c.questions for turn in q.evidence}
        turn_text = {(c.index, t.dia_id): t.text for c in conversations for s in c.sessions for t in s.turns}
        held = {
            name: {
                (int(memory_user.split("-")[1]), turn)
                for memory_user, memory_id in Memory.objects.filter(user_id__in=ids)
                .current()
                .values_list("user_id", "id")
                for turn in dia_of[name].get(memory_id, ())
            }
            for name, ids in users.items()
        }
        skipped_evidence = sorted(
            turn for turn in evidence - held["locomo"] if carries_nothing(turn_text.get(turn, ""))
        )

        old = {"relevance": 0.70, "salience": 0.15, "recency": 0.10, "sector": 0.05, "link": 0.05}

        def only(*terms: str) -> dict[str, float]:
            return {name: (old[name] if name in terms else 0.0) for name in old} | {
                "relevance": 1.0 if not terms else 0.70
            }

        variants = [
            Variant("floor: every caller turn verbatim, cosine", "floor", ask_by_cosine),
            Variant(
                "floor: every caller turn verbatim, cosine + BM25",
                "floor",
                asking_the_platform(hybrid=True, expand_links=False, weights=only()),
            ),
            Variant(
                "platform, cosine only", "locomo", asking_the_platform(hybrid=False, expand_links=False, weights=only())
            ),
            Variant(
                "platform, hybrid (cosine + BM25)",
                "locomo",
                asking_the_platform(hybrid=True, expand_links=False, weights=only()),
            ),
            *(
                Variant(
                    f"platform, hybrid + {term}",
                    "locomo",
                    asking_the_platform(hybrid=True, expand_links=False, weights=only(term)),
                )
                for term in ("salience", "recency", "sector")
            ),
            Variant(
                "platform, hybrid + link expansion",
                "locomo",
                asking_the_platform(hybrid=True, expand_links=True, weights=only("link")),
            ),
            Variant(
                "platform, hybrid + every term (the old blend)",
                "locomo",
                asking_the_platform(hybrid=True, expand_links=True, weights=old),
            ),
            Variant("platform as configured (settings)", "locomo", asking_the_platform()),
        ]
        if not args.no_tool:
            variants.append(
                Variant(
                    "memory query tool over HTTP (as configured, reinforcing)",
                    "locomo",
                    asking_the_tool(server.url, tool_latencies),
                )
            )
        for variant in variants:
            variant.memories = stored[variant.users]
            variant_started = time.perf_counter()
            for conversation in conversations:
                for question in conversation.questions:
                    ranked = variant.ask(users_asked(conversation, question, variant.users), question.text)
                    variant.record(question, ranked, dia_of[variant.users])
            variant.seconds = time.perf_counter() - variant_started

    provider = get_provider().describe()
    return {
        "provider": provider,
        "extractor": f"LLM ({settings.EXTRACTION_LLM_MODEL})" if settings.EXTRACTION_LLM_MODEL else "utterances",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "conversations": len(conversations),
        "sessions": sum(len(c.sessions) for c in conversations),
        "calls": len(calls),
        "turns": sum(len(s.turns) for c in conversations for s in c.sessions),
        "questions": sum(len(c.questions) for c in conversations),
        "questions_without_evidence": sum(c.unanswerable for c in conversations),
        "summaries": not args.no_summaries,
        "utterance_memories": utterances,
        "evidence_turns_held": {name: len(evidence & turns) / max(1, len(evidence)) for name, turns in held.items()},
        "evidence_turns_skipped_as_carrying_nothing": [f"{index}:{turn}" for index, turn in skipped_evidence],
        "replay_seconds": round(replay_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "tool_ms": {
            "p50": round(1000 * statistics.median(tool_latencies), 1) if tool_latencies else None,
            "p95": round(1000 * sorted(tool_latencies)[int(0.95 * len(tool_latencies))], 1) if tool_latencies else None,
            "requests": len(tool_latencies),
        },
        "results": [variant.summary() for variant in variants],
    }


def print_report(report: dict) -> None:
    provider = report["provider"]
    described = f"{provider['provider']} / {provider['model']} / {provider['dimensions']} dimensions"
    if provider.get("base_url"):
        described += f" ({provider['base_url']})"
    print()
    print(
        f"LoCoMo retrieval: embeddings {described}; extraction: {report['extractor']}; {report['database']}; "
        f"{report['conversations']} conversations, {report['sessions']} sessions ({report['calls']} calls, "
        f"{report['turns']:,} turns), {report['questions']:,} questions (categories 1-4; "
        f"{report['questions_without_evidence']} without usable evidence skipped); call summaries "
        f"{'on' if report['summaries'] else 'off'}; wall time {report['wall_seconds']:.1f} s "
        f"(replay through HTTP and the worker {report['replay_seconds']:.1f} s)"
    )
    held = report["evidence_turns_held"]
    print(
        f"evidence turns held by some memory: floor {held['floor']:.1%}, platform {held['locomo']:.1%}; "
        f"evidence turns skipped as carrying nothing: {len(report['evidence_turns_skipped_as_carrying_nothing'])} "
        f"{report['evidence_turns_skipped_as_carrying_nothing'][:10]}"
    )
    tool = report["tool_ms"]
    if tool["requests"]:
        print(
            f"memory query tool over HTTP during the run: p50 {tool['p50']} ms, p95 {tool['p95']} ms "
            f"({tool['requests']:,} requests)"
        )
    print()
    print("| variant | recall@5 | recall@10 | any-evidence@5 | any-evidence@10 | memories stored | query s |")
    print("|---|---|---|---|---|---|---|")
    for row in report["results"]:
        print(
            f"| {row['label']} | {row['recall@5']:.3f} | {row['recall@10']:.3f} | {row['any@5']:.3f} | "
            f"{row['any@10']:.3f} | {row['memories']:,} | {row['query_seconds']:.1f} |"
        )
    for k in KS:
        categories = sorted({category for row in report["results"] for category in row[f"recall@{k}_by_category"]})
        print()
        print(f"| recall@{k} by question category | " + " | ".join(f"category {c}" for c in categories) + " |")
        print("|---" * (1 + len(categories)) + "|")
        for row in report["results"]:
            by_category = row[f"recall@{k}_by_category"]
            cells = " | ".join(f"{by_category[c]:.3f}" if c in by_category else "-" for c in categories)
            print(f"| {row['label']} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help=f"default {DEFAULT_DATASET}")
    parser.add_argument("--conversations", type=int, default=None, help="the first N conversations (default all)")
    parser.add_argument(
        "--tiny", action="store_true", help="1 conversation, its first 2 sessions and their questions (seconds)"
    )
    parser.add_argument("--no-summaries", action="store_true", help="send no call summaries")
    parser.add_argument("--no-tool", action="store_true", help="skip the memory query tool row (HTTP, reinforcing)")
    parser.add_argument("--database-url", help="a database to use instead of a throw-away SQLite file")
    parser.add_argument("--redis-url", help="a Redis for the embedding cache instead of the local file")
    parser.add_argument("--data-dir", help="keep DATA_DIR (the SQLite file, the embedding cache) here")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args()
    if not args.dataset.is_file():
        parser.error(f"LoCoMo not found at {args.dataset} (see ../shared/datasets/README.md); pass --dataset")

    with tempfile.TemporaryDirectory(prefix="locomo-bench-") as temporary:
        data_dir = args.data_dir or temporary
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        env = stack_env(data_dir, args.database_url, args.redis_url)
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        report = run(args, env)
        from django.db import connections

        connections.close_all()
    print_report(report)
    if args.json:
        print()
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
