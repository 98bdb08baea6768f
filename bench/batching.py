"""Batching: one call that yields 40 memories, against a fake OpenAI server that answers after 100 ms.

    .venv/bin/python bench/batching.py                 # 40 memories, 100 ms per request, 3 repetitions
    .venv/bin/python bench/batching.py --tiny          # seconds; what the test suite runs

The embedded stack (SQLite and the local LRU cache in a temporary folder; DATABASE_URL and REDIS_URL are
ignored) with the `openai` provider pointed at `testkit.fake_openai.FakeOpenAIServer` through the real
`openai` client (EMBEDDING_MAX_RETRIES=0), the server sleeping `--delay` seconds before every answer.
Side by side, in one run, `--repeat` times with the order alternating, each time with texts never seen
before (so the cache never helps) and a fresh user:
  batched    - `memories.services.create_memories(user, [NewMemory(text) x N], link_together=True)`, what
               the post-call ingestion does with the facts of one conversation
  one by one - N x `memories.services.create_memory(user, NewMemory(text))`
and reports the embedding requests the fake server received, the texts they carried and the wall time,
per repetition and as medians.
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

TOPICS = ["billing", "travel", "family", "the delivery", "their account", "the last call", "a refund", "a product"]


def setup_django(data_dir: str, base_url: str) -> None:
    """Embedded stack in `data_dir`, the OpenAI provider at `base_url`; migrates the SQLite database."""
    for name in list(os.environ):
        if name in ("DATABASE_URL", "REDIS_URL") or name.startswith(("EMBEDDING_", "OPENAI_")):
            del os.environ[name]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
            "READ_DOTENV": "0",
            "SECRET_KEY": "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789",
            "TASKS_IN_PROCESS_WORKER": "0",
            "DATA_DIR": data_dir,
            "EMBEDDING_CACHE_PATH": str(Path(data_dir) / "embedding-cache.sqlite3"),
            "EMBEDDING_PROVIDER": "openai",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "x",
            "EMBEDDING_MODEL": "text-embedding-3-small",
            "EMBEDDING_MAX_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def distinct_texts(label: str, count: int) -> list[str]:
    return [
        f"{label}: fact {index}, the caller said something about {TOPICS[index % len(TOPICS)]} ({index * 7919})"
        for index in range(count)
    ]


def run_batched(server, user: str, texts: list[str]) -> tuple[int, int, float, int]:
    """(requests, texts sent, seconds, memories created) for one create_memories call."""
    from memories.services import NewMemory, create_memories

    before = len(server.embedding_requests)
    started = time.perf_counter()
    results = create_memories(default_owner(user), [NewMemory(text) for text in texts], link_together=True)
    seconds = time.perf_counter() - started
    return *sent_since(server, before), seconds, sum(result.created for result in results)


def run_one_by_one(server, user: str, texts: list[str]) -> tuple[int, int, float, int]:
    """(requests, texts sent, seconds, memories created) for one create_memory call per text."""
    from memories.services import NewMemory, create_memory

    before = len(server.embedding_requests)
    started = time.perf_counter()
    results = [create_memory(default_owner(user), NewMemory(text)) for text in texts]
    seconds = time.perf_counter() - started
    return *sent_since(server, before), seconds, sum(result.created for result in results)


def sent_since(server, before: int) -> tuple[int, int]:
    requests = server.embedding_requests[before:]
    inputs = sum(len(r["body"]["input"]) if isinstance(r["body"]["input"], list) else 1 for r in requests)
    return len(requests), inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=40, help="memories per call (default 40)")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the fake server waits (default 0.1)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions, order alternating (default 3)")
    parser.add_argument("--tiny", action="store_true", help="6 memories, 20 ms, 2 repetitions")
    args = parser.parse_args()
    if args.tiny:
        args.memories, args.delay, args.repeat = 6, 0.02, 2

    from testkit.fake_openai import FakeOpenAIServer

    server = FakeOpenAIServer(dimensions=1536).start()
    server.delay = args.delay
    try:
        with tempfile.TemporaryDirectory(prefix="bench-batching-") as data_dir:
            setup_django(data_dir, server.base_url)
            # Warm-up, not measured: first connection to the server, first queries, lazy imports.
            run_batched(server, "bench-user-warm-up", distinct_texts("warm-up-batched", 3))
            run_one_by_one(server, "bench-user-warm-up", distinct_texts("warm-up-one-by-one", 3))
            rows = []
            for repetition in range(args.repeat):
                batched_first = repetition % 2 == 0
                runs = {}
                for mode in ("batched", "one by one") if batched_first else ("one by one", "batched"):
                    label = f"rep{repetition}-{mode.replace(' ', '-')}"
                    texts = distinct_texts(label, args.memories)
                    runner = run_batched if mode == "batched" else run_one_by_one
                    runs[mode] = runner(server, f"bench-user-{label}", texts)
                rows.append((repetition, "batched first" if batched_first else "one by one first", runs))
    finally:
        server.stop()

    print(
        f"{args.memories} memories per call, fake OpenAI server answering after {1000 * args.delay:.0f} ms, "
        f"embedded stack (SQLite), {args.repeat} repetitions with the order alternating after a warm-up; "
        "fresh texts every time"
    )
    print()
    print(
        "| repetition | order | batched: requests / texts | batched s | one by one: requests / texts "
        "| one by one s | speedup |"
    )
    print("|---|---|---|---|---|---|---|")
    for repetition, order, runs in rows:
        b_requests, b_texts, b_seconds, _ = runs["batched"]
        s_requests, s_texts, s_seconds, _ = runs["one by one"]
        print(
            f"| {repetition + 1} | {order} | {b_requests} / {b_texts} | {b_seconds:.3f} | {s_requests} / {s_texts} "
            f"| {s_seconds:.3f} | {s_seconds / b_seconds:.1f}x |"
        )
    print()
    print(
        "| mode | provider requests | texts embedded | memories created | wall s (median) | ms per memory "
        "| wall minus the server's sleeps, s |"
    )
    print("|---|---|---|---|---|---|---|")
    medians = {}
    for mode, call in (
        ("batched", f"create_memories(user, {args.memories} x NewMemory, link_together=True)"),
        ("one by one", f"{args.memories} x create_memory(user, NewMemory)"),
    ):
        requests = statistics.median(runs[mode][0] for _, _, runs in rows)
        texts = statistics.median(runs[mode][1] for _, _, runs in rows)
        created = statistics.median(runs[mode][3] for _, _, runs in rows)
        seconds = medians[mode] = statistics.median(runs[mode][2] for _, _, runs in rows)
        print(
            f"| {mode}: `{call}` | {requests:g} | {texts:g} | {created:g} | {seconds:.3f} "
            f"| {1000 * seconds / args.memories:.1f} | {seconds - requests * args.delay:.3f} |"
        )
    ratios = [runs["one by one"][2] / runs["batched"][2] for _, _, runs in rows]
    print()
    print(
        f"speedup (one by one / batched, median of the per-repetition ratios): {statistics.median(ratios):.1f}x; "
        f"the provider's floor alone is {args.delay:.2f} s batched against {args.memories * args.delay:.2f} s "
        "one by one"
    )


if __name__ == "__main__":
    main()
