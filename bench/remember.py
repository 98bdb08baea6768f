"""The remember tool over HTTP: how long storing a fact takes, and that the next query of the call finds it.

    .venv/bin/python bench/remember.py                     # embedded stack (SQLite), 300 facts
    DATABASE_URL=postgres://… REDIS_URL=redis://…/12 .venv/bin/python bench/remember.py --stack production
    .venv/bin/python bench/remember.py --tiny              # seconds; what the test suite runs

gunicorn as configured serves the project on a throw-away database (the embedded stack in a temporary folder;
on PostgreSQL a fresh `memoryplatform_bench_remember` database). Each of 30 callers already has 50 memories;
the facts' embeddings are cached first ("a warm provider": the provider's own time is not ours to measure).
Then one client, as an agent mid-call: remember a fact, then ask the memory tool a question with the fact's
words, over and over. Reported: remember p50/p95/max, and the share of questions whose first answer is the fact
just remembered. Target (issue 15): remember p95 ≤ 50 ms.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.environment import server_environment  # noqa: E402
from testkit.processes import Gunicorn  # noqa: E402

SECRET = "bench-tool-secret"
TOPICS = ["garden", "invoice", "flight", "doctor", "bicycle", "piano", "insurance", "kitchen", "holiday", "school"]


def environment(stack: str, data_dir: str) -> dict[str, str]:
    env = server_environment(data_dir, ELEVENLABS_TOOL_SECRETS=SECRET)
    if stack == "production":
        base = os.environ.get("DATABASE_URL", "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform")
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/memoryplatform_bench_remember"
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    return env


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def fact(user: int, index: int) -> tuple[str, str]:
    topic = TOPICS[index % len(TOPICS)]
    code = f"{user:03d}{index:04d}"
    return f"The caller's {topic} reference number is RX{code}", f"what is the {topic} reference number RX{code}?"


def prepare(env: dict, users: int, per_user: int, facts: list[str]) -> None:
    """Load the callers' memories and cache the facts' embeddings, in a child process on the server's settings."""
    script = f"""
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from memories.services import NewMemory, create_memories
from embeddings.generation import generate_embeddings_batch
from memories.owners import default_owner
for user in range({users}):
    topics = enumerate({TOPICS!r} * ({per_user} // {len(TOPICS)} + 1))
    memories = [NewMemory(f"Memory {{index}} of caller {{user}} about the {{topic}}") for index, topic in topics]
    create_memories(default_owner(f"caller-{{user}}"), memories[:{per_user}])
generate_embeddings_batch({facts!r})
"""
    import subprocess

    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def call(url: str, body: dict) -> tuple[dict, float]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "X-Memory-Secret": SECRET}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    return answer, 1000 * (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--facts", type=int, default=300)
    parser.add_argument("--tiny", action="store_true", help="3 callers, 20 facts")
    args = parser.parse_args()
    users, per_user = (3, 10) if args.tiny else (30, 50)
    count = 20 if args.tiny else args.facts
    pairs = [fact(index % users, index) for index in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-remember-") as data_dir:
        env = environment(args.stack, data_dir)
        if args.stack == "production":
            fresh_database(env["DATABASE_URL"])
        prepare(env, users, per_user, [text for text, _ in pairs])
        with Gunicorn(env) as server:
            remember_ms, found = [], 0
            for index, (text, question) in enumerate(pairs):
                user_id = f"caller-{index % users}"
                stored, elapsed = call(f"{server.url}/tools/memory-remember", {"text": text, "user_id": user_id})
                remember_ms.append(elapsed)
                answer, _ = call(f"{server.url}/tools/memory-query", {"query": question, "user_id": user_id})
                found += bool(answer["memories"]) and answer["memories"][0]["id"] == stored["id"]
    ordered = sorted(remember_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"\n{args.stack}; {count} facts for {users} callers of {per_user} memories; gunicorn as configured\n")
    print("| measure | value |\n|---|---|")
    print(f"| remember p50 / p95 / max ms | {statistics.median(ordered):.1f} / {p95:.1f} / {ordered[-1]:.1f} |")
    print(f"| next query answers the fact first | {found} / {count} |")


if __name__ == "__main__":
    main()
