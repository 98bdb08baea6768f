"""The Custom LLM endpoint: the time to first token it adds, and how many open streams it holds.

    .venv/bin/python bench/custom_llm.py                # embedded stack (SQLite), 1 and 32 streams, then 200 open
    DATABASE_URL=postgres://… REDIS_URL=redis://…/12 .venv/bin/python bench/custom_llm.py --stack production
    .venv/bin/python bench/custom_llm.py --tiny         # about half a minute; what the test suite runs

A fake upstream LLM (testkit.fake_openai) streams 8 words at a fixed pace (a chunk every 50 ms, with the role
and finish chunks about 0.5 s an answer). The same client asks,
side by side in one run, (a) the upstream directly and (b) our `/v1/chat/completions` on the ASGI server as
production runs it (gunicorn.conf.py's default of 2 uvicorn workers, as compose's `llm` service), with a caller
who has 50 memories, so every turn looks up and adds memories before forwarding. Time to first token = request
sent → first `data:` event with content.

Rows:
- 1 stream: one conversation, its turns back to back.
- 32 concurrent streams: 32 conversations, each reading every answer to its end and asking again after a pause
  drawn at random up to half an answer's length (a caller who speaks for a quarter of a second on average:
  far harsher than a call). Conversations do not all start in the same millisecond: each starts at a random
  moment within one answer's length, as independent calls do. Starts and pauses are seeded; the direct rows
  get the same ones. A failed turn is counted and reported; a row with any is not a result.
- 32 clients hanging up at the first token and asking again at once: not a call pattern but a saturation
  test (by Little's law its latency is 32 / throughput); it shows the turns per second one machine serves.
Then 200 streams held open at once (each 8 x 250 ms), counting errors. Targets (issue 15): added p95 ≤ 25 ms at
1 client and ≤ 50 ms at 32 concurrent streams; 200 open streams without errors.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.environment import server_environment  # noqa: E402
from testkit.fake_openai import FakeOpenAIServer  # noqa: E402
from testkit.processes import AsgiServer  # noqa: E402

KEY = "bench-llm-key"


def environment(stack: str, data_dir: str, upstream: str) -> dict[str, str]:
    env = server_environment(
        data_dir, ELEVENLABS_LLM_SECRETS=KEY, CUSTOM_LLM_BASE_URL=upstream, CUSTOM_LLM_API_KEY="sk-upstream"
    )
    if stack == "production":
        base = os.environ.get("DATABASE_URL", "postgres://memoryplatform:memoryplatform@127.0.0.1:5432/memoryplatform")
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/memoryplatform_bench_llm"
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    return env


def prepare(env: dict, stack: str) -> None:
    import subprocess

    if stack == "production":
        import psycopg

        url = env["DATABASE_URL"]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute('DROP DATABASE IF EXISTS "memoryplatform_bench_llm" WITH (FORCE)')
            connection.execute('CREATE DATABASE "memoryplatform_bench_llm"')
    script = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from memories.services import NewMemory, create_memories
from memories.owners import default_owner
topics = ["dog", "invoice", "flight", "garden", "piano"]
facts = [NewMemory(f"Fact {index} about the caller's {topics[index % 5]}") for index in range(50)]
create_memories(default_owner("caller"), facts)
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def first_token_ms(url: str, key: str, question: str, hold: bool = False) -> float:
    """Send one streaming request; milliseconds until the first content chunk; `hold` reads it to the end."""
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "user_id": "caller",
        "messages": [{"role": "system", "content": "You are Ava."}, {"role": "user", "content": question}],
    }
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        first = None
        for line in response:
            if (
                first is None
                and line.startswith(b"data: {")
                and b'"content":"' in line.replace(b" ", b"")
                and (b'"content":""' not in line.replace(b" ", b""))
            ):
                first = 1000 * (time.perf_counter() - started)
                if not hold:
                    break
            if line.startswith(b"data: [DONE]"):
                break
    if first is None:
        raise RuntimeError("no content chunk")
    return first


QUESTIONS = [f"what did I say about my {topic}?" for topic in ("dog", "invoice", "flight", "garden", "piano")]


def measure(url: str, key: str, clients: int, requests: int) -> list[float]:
    """`clients` threads asking back to back, each hanging up at the first token; `requests` in all."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda i: first_token_ms(url, key, QUESTIONS[i % 5]), range(requests)))


def schedules(conversations: int, turns: int, answer_seconds: float, seed: int) -> list[list[float]]:
    """For each conversation, the seconds to wait before each of its turns: the first a random start within one
    answer's length (the first conversation starts at once), then a random pause up to half an answer."""
    seeded = random.Random(seed)
    return [
        [0.0 if index == 0 else seeded.uniform(0, answer_seconds)]
        + [seeded.uniform(0, answer_seconds / 2) for _ in range(turns - 1)]
        for index in range(conversations)
    ]


def conversations(url: str, key: str, plan: list[list[float]]) -> tuple[list[float], list[str]]:
    """One thread per conversation, waiting as `plan` says before each turn and reading every answer to its end;
    (times to first token, errors)."""
    times, errors, lock = [], [], threading.Lock()

    def talk(index: int) -> None:
        for turn, wait in enumerate(plan[index]):
            time.sleep(wait)
            try:
                took = first_token_ms(url, key, QUESTIONS[(index + turn) % 5], hold=True)
            except Exception as error:  # counted, reported: a failed turn must not vanish from the figures
                with lock:
                    errors.append(repr(error))
                continue
            with lock:
                times.append(took)

    threads = [threading.Thread(target=talk, args=(index,)) for index in range(len(plan))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--requests", type=int, default=100, help="turns of the 1-stream row")
    parser.add_argument("--turns", type=int, default=8, help="turns of each of the 32 concurrent conversations")
    parser.add_argument("--open-streams", type=int, default=200)
    parser.add_argument("--seed", type=int, default=15, help="the conversations' starts and pauses")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (gunicorn.conf.py's default: 2)")
    parser.add_argument("--tiny", action="store_true", help="20 turns, 2 per conversation, 20 open streams")
    args = parser.parse_args()
    if args.tiny:
        args.requests, args.turns, args.open_streams = 20, 2, 20
    upstream = FakeOpenAIServer(dimensions=384).start()
    upstream.stream_words = [f" token{index}" for index in range(8)]
    upstream.stream_interval = 0.05
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-llm-") as data_dir:
            env = environment(args.stack, data_dir, upstream.base_url)
            env["WEB_WORKERS"] = str(args.workers)
            prepare(env, args.stack)
            with AsgiServer(env) as server:
                ours = f"{server.url}/v1/chat/completions"
                direct = f"{upstream.base_url}/chat/completions"
                measure(ours, KEY, 4, 20)  # warm-up: connections, the plan cache, the memories' pages
                # role chunk, the words, the finish chunk: a pause of `stream_interval` after each
                answer_seconds = (len(upstream.stream_words) + 2) * upstream.stream_interval
                errors_seen: list[str] = []
                for clients in (1, 32):
                    turns = args.requests if clients == 1 else args.turns
                    # one conversation: its turns back to back
                    plan = [[0.0] * turns] if clients == 1 else schedules(clients, turns, answer_seconds, args.seed)
                    baseline, direct_errors = conversations(direct, "sk-upstream", plan)
                    through, our_errors = conversations(ours, KEY, plan)
                    label = f"{clients} concurrent stream{'s' if clients > 1 else ''}"
                    rows.append((label, baseline, through, len(direct_errors) + len(our_errors)))
                    errors_seen += direct_errors + our_errors
                count = 32 * max(args.turns, 4)
                baseline, started = measure(direct, "sk-upstream", 32, count), time.perf_counter()
                through = measure(ours, KEY, 32, count)
                saturation = count / (time.perf_counter() - started)
                rows.append(("32 clients hanging up at the first token", baseline, through, 0))
                upstream.stream_interval = 0.25  # long-lived streams: each is open about 2 s
                errors, lock = [], threading.Lock()

                def hold(index: int) -> None:
                    try:
                        first_token_ms(ours, KEY, "what about my dog?", hold=True)
                    except Exception as error:  # counted, reported
                        with lock:
                            errors.append(repr(error))

                started = time.perf_counter()
                threads = [threading.Thread(target=hold, args=(index,)) for index in range(args.open_streams)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                held_seconds = time.perf_counter() - started
    finally:
        upstream.stop()
    workers = f"{args.workers} uvicorn worker{'s' if args.workers != 1 else ''}"
    print(f"\n{args.stack}; gunicorn + {workers}; upstream streams 8 words 50 ms apart; caller with 50 memories\n")
    print("| load | direct p50 / p95 ms | through us p50 / p95 ms | added p50 / p95 ms | failed turns |")
    print("|---|---|---|---|---|")
    for load, baseline, through, failed in rows:
        print(
            f"| {load} | {statistics.median(baseline):.1f} / {percentile(baseline, 0.95):.1f} "
            f"| {statistics.median(through):.1f} / {percentile(through, 0.95):.1f} "
            f"| {statistics.median(through) - statistics.median(baseline):.1f} / "
            f"{percentile(through, 0.95) - percentile(baseline, 0.95):.1f} | {failed} |"
        )
    if any(failed for *_, failed in rows):
        print("\nNOT A RESULT: turns failed (a row's times leave them out):")
        for error in errors_seen[:5]:
            print("  ", error)
    print(f"\nsaturation: {saturation:.0f} turns/s through us (32 clients hanging up at the first token)")
    print(
        f"\n{args.open_streams} streams open at once (2 s each): {len(errors)} errors, all done in {held_seconds:.1f} s"
    )
    for error in errors[:5]:
        print("  ", error)


if __name__ == "__main__":
    main()
