"""The embedding cache benchmarks run once each in their tiny mode: they must work end to end and print sane
figures. No timing is asserted (the machine is shared and noisy)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args: str, env: dict[str, str] | None = None, embedded: bool = False) -> str:
    base = dict(os.environ)
    if embedded:  # always the embedded stack, whichever stack the suite runs on
        base.pop("DATABASE_URL", None)
        base.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def table_rows(output: str, header_start: str) -> list[list[str]]:
    """The cells of the rows of the markdown table whose header line starts with `header_start`."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


@pytest.mark.embedded
def test_hit_rate_benchmark_tiny():
    output = run_script("bench/hit_rate.py", "--tiny", embedded=True)
    header = "| size | ours | LRU (simulated) | FIFO | OPT | ours/LRU | LRU/OPT |"
    assert header in output
    rows = table_rows(output, header)
    assert [number(row[0]) for row in rows] == [40, 200, 800]
    for row in rows:
        ours, lru, fifo, opt, ours_vs_lru, lru_vs_opt = (number(cell) for cell in row[1:7])
        for rate in (ours, lru, fifo, opt):
            assert 0 <= rate <= 1
        assert opt >= lru and opt >= fifo and opt >= ours
        assert ours_vs_lru >= 0.9  # the target: within 10 % of an exact LRU
        assert 0 < lru_vs_opt <= 1
    # A cache as large as the whole vocabulary only misses each text once: every policy is the same.
    ours, lru, fifo, opt = (number(cell) for cell in rows[-1][1:5])
    assert ours == lru == fifo == opt
    # Smaller caches hit less.
    assert number(rows[0][1]) < number(rows[1][1]) < number(rows[2][1])


@pytest.mark.embedded
def test_batching_benchmark_tiny():
    output = run_script("bench/batching.py", "--tiny", embedded=True)
    header = "| mode | provider requests | texts embedded | memories created | wall s (median) | ms per memory |"
    assert header in output
    batched, one_by_one = table_rows(output, header)
    assert batched[0].startswith("batched") and one_by_one[0].startswith("one by one")
    assert number(batched[1]) == 1
    assert number(one_by_one[1]) == 6
    assert number(batched[1]) < number(one_by_one[1])
    assert number(batched[2]) == number(one_by_one[2]) == 6  # every text embedded exactly once
    assert number(batched[3]) == number(one_by_one[3]) == 6
    assert "speedup (one by one / batched" in output


@pytest.mark.redis
def test_cache_hit_path_benchmark_tiny():
    import redis

    url = os.environ.get("BENCH_REDIS_URL") or os.environ["REDIS_URL"]
    output = run_script("bench/cache_hit_path.py", "--tiny", env={"BENCH_REDIS_URL": url})
    header = "| variant | median µs | p95 µs | / bare GET |"
    assert header in output
    variants = {row[0]: row for row in table_rows(output, header)}
    assert {"hit", "bare GET", "counted lookup"} <= set(variants)
    for row in variants.values():
        assert number(row[1]) > 0 and number(row[2]) >= number(row[1])
    assert re.search(r"^hit / bare GET: \d+\.\d\d ", output, re.MULTILINE)
    assert "| keys per lookup | count=True µs | count=False µs | plain MGET µs |" in output
    formats = {row[0]: row for row in table_rows(output, "| format | value bytes |")}
    assert number(formats["float32 codec (what we store)"][1]) == 1536 * 4
    assert number(formats["pickled list of floats"][1]) > 1536 * 4
    assert number(formats["float32 codec (what we store)"][2]) >= 1536 * 4  # MEMORY USAGE includes the value
    # It deleted exactly what it created.
    prefix = re.search(r"cleaned up: \d+ embedding keys and the stats hash under `([^`]+)`", output).group(1)
    assert not list(redis.Redis.from_url(url).scan_iter(match=f"{prefix}*"))
