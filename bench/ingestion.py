"""Ingestion: post-call events processed per second by one worker, and the time from the webhook's 200 to
the memories being searchable.

    .venv/bin/python bench/ingestion.py                       # embedded stack, 200 events
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/ingestion.py --events 200   # production stack
    .venv/bin/python bench/ingestion.py --tiny                # seconds; what the test suite runs

Each event is an ElevenLabs-shaped post_call_transcription (8 caller turns, a summary, one data-collection
value: about 10 memories), signed and posted in-process to the webhook. Throughput: N events stored, then
one `run_worker --batch` drains them. Latency: the in-process worker (polling every second, as
`run_worker`'s default) runs while events arrive one by one; after each 200 the memory query is polled until
the call's memories come back.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memories.owners import default_owner  # noqa: E402 - plain Python, no Django needed

CALLER_LINES = [
    "I was double charged on my invoice number {n} and I'm frustrated about it.",
    "I prefer email over phone calls, my address is user{n}@example.com.",
    "My daughter starts college in Lisbon next month, so I'm travelling a lot.",
    "I work night shifts at the hospital, so please call after 2 pm.",
    "We have a dog called Rex number {n} who hates the vacuum cleaner.",
    "I'm planning to upgrade to the premium plan when the promotion starts.",
    "Last time the technician never showed up and I waited all day.",
    "I love the new app but the login keeps failing on my tablet.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--latency-events", type=int, default=20)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.events, args.latency_events = 5, 2
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "READ_DOTENV": "0",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "TASKS_IN_PROCESS_WORKER": "0",
            "ELEVENLABS_WEBHOOK_SECRETS": "bench-webhook-secret",
        }
    )
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-ingestion-"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from calls.models import WebhookEvent
    from calls.signatures import sign
    from core.worker import start_in_process_worker, stop_in_process_worker
    from memories.models import Memory
    from memories.query import query_memories
    from testkit.elevenlabs import encode, transcription_payload
    from testkit.tasks import drain_task_queue

    call_command("migrate", verbosity=0)
    run = f"{int(time.time())}"
    client = Client()

    def post(index: int) -> str:
        conversation = f"conv_bench_{run}_{index}"
        payload = transcription_payload(
            conversation_id=conversation,
            phone=None,
            user_id=f"usr_bench_{run}_{index}",
            caller_lines=tuple(line.format(n=index) for line in CALLER_LINES),
        )
        body = encode(payload)
        response = client.post(
            "/webhooks/elevenlabs/post-call",
            data=body,
            content_type="application/json",
            headers={"ElevenLabs-Signature": sign(body, "bench-webhook-secret")},
        )
        assert response.status_code == 200, response.content
        return conversation

    started = time.perf_counter()
    for index in range(args.events):
        post(index)
    receive_seconds = time.perf_counter() - started
    started = time.perf_counter()
    drain_task_queue()
    process_seconds = time.perf_counter() - started
    processed = WebhookEvent.objects.filter(conversation_id__startswith=f"conv_bench_{run}_", status="processed")
    assert processed.count() == args.events, processed.count()
    memories = Memory.objects.filter(user_id__startswith=f"usr_bench_{run}_").count()

    if connection.vendor == "sqlite":
        connection.close()
    start_in_process_worker()
    latencies = []
    try:
        for index in range(args.events, args.events + args.latency_events):
            post(index)
            answered = time.perf_counter()
            user_id = f"usr_bench_{run}_{index}"
            while not query_memories(
                default_owner(user_id), "double charged invoice", limit=1, reinforce_results=False
            ).memories:
                time.sleep(0.01)
                if time.perf_counter() - answered > 30:
                    raise RuntimeError("memories never became searchable")
            latencies.append(1000 * (time.perf_counter() - answered))
    finally:
        stop_in_process_worker()

    print()
    print(
        f"{connection.vendor}; {args.events} events of {len(CALLER_LINES)} caller turns ({memories / args.events:.1f} "
        f"memories each); embeddings {settings.EMBEDDING_PROVIDER} / {settings.EMBEDDING_MODEL}, "
        f"{settings.EMBEDDING_DIMENSIONS} dimensions"
    )
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| webhook answered (store + queue), per event | {1000 * receive_seconds / args.events:.1f} ms |")
    print(f"| events processed per second, one worker | {args.events / process_seconds:.1f} |")
    print(f"| memories stored per second, one worker | {memories / process_seconds:.0f} |")
    print(
        f"| 200 to searchable, p50 / max over {len(latencies)} events (worker polls every 1 s) | "
        f"{statistics.median(latencies):.0f} / {max(latencies):.0f} ms |"
    )


if __name__ == "__main__":
    main()
