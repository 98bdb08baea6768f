"""Each benchmark runs once in its tiny mode: it must work end to end. No timing is asserted."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(*args: str, env: dict | None = None) -> str:
    """Run a benchmark script; `env` replaces the environment (default: this one)."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=os.environ.copy() if env is None else env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.postgres
def test_vector_search_benchmark_tiny():
    output = run_benchmark("bench/vector_search.py", "--tiny")
    assert "recall@15 against the exact plan" in output
    heavy = next(line for line in output.splitlines() if line.startswith("| heavy (300) |"))
    assert heavy.count("|") == 10 and "—" not in heavy, "exact, 3 shared and 3 dedicated columns, and the rule"
    assert "built the dedicated index of heavy-user" in output


def embedded_env() -> dict:
    return {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}


@pytest.mark.embedded
def test_http_latency_benchmark_tiny_embedded():
    output = run_benchmark("bench/http_latency.py", "--tiny", "--stack", "embedded", env=embedded_env())
    assert "| embedded | memory query | heavy user | 1 |" in output
    assert "| embedded | conversation initiation | ordinary user | 1 |" in output


@pytest.mark.postgres
def test_http_latency_benchmark_tiny_production():
    output = run_benchmark("bench/http_latency.py", "--tiny", "--stack", "production")
    rows = [line for line in output.splitlines() if line.startswith("| production |")]
    assert len(rows) == 7 and "| bare endpoint (/healthz) |" in rows[0]
    assert "| ordinary user, copy loaded for every query | 1 |" in rows[-3]
    assert "| ordinary user, no copies | 1 |" in rows[-2]
    assert "| heavy user, shared index only | 1 |" in rows[-1]
    assert all(line.rstrip().endswith("| 0 |") for line in rows), "no request errors"
    assert "build  heavy-user (200 memories)" in output and "Built 1," in output, "its dedicated index"
    assert "production: memory query / bare endpoint, req/s at 1 client: median" in output


@pytest.mark.embedded
def test_ingestion_benchmark_tiny_embedded():
    output = run_benchmark("bench/ingestion.py", "--tiny", env=embedded_env())
    assert "| events processed per second, one worker |" in output
    assert "| 200 to searchable, p50 / max over 2 events" in output


@pytest.mark.postgres
def test_faults_benchmark_tiny():
    """Chaos, slow provider and busy embedded stack, each in seconds; the numbers it prints are not asserted,
    but what it counts is: nothing acknowledged may be lost, duplicated or stuck."""
    output = run_benchmark("bench/faults.py", "--tiny")
    for line in ("| lost | 0 |", "| duplicated memories | 0 |", "| stuck after recovery | 0 |"):
        assert line in output, output
    assert "| gthread, 2 x 8 |" in output and "| scripts/run (runserver) | 24 | 0 |" in output


@pytest.mark.embedded
def test_local_model_benchmark_tiny():
    output = run_benchmark("bench/local_model.py", "--tiny", env=embedded_env())
    assert "all-MiniLM-L6-v2" in output and "hashing" in output.lower()


@pytest.mark.embedded
def test_remember_benchmark_tiny_embedded():
    output = run_benchmark("bench/remember.py", "--tiny", env=embedded_env())
    assert "| remember p50 / p95 / max ms |" in output
    assert "| next query answers the fact first | 20 / 20 |" in output


@pytest.mark.postgres
def test_remember_benchmark_tiny_production():
    output = run_benchmark("bench/remember.py", "--tiny", "--stack", "production")
    assert "| next query answers the fact first | 20 / 20 |" in output


@pytest.mark.embedded
def test_custom_llm_benchmark_tiny_embedded():
    output = run_benchmark("bench/custom_llm.py", "--tiny", env=embedded_env())
    for load in ("1 concurrent stream", "32 concurrent streams"):  # figures, and no failed turn
        assert re.search(rf"^\| {load} \| [0-9.]+ / [0-9.]+ \| [0-9.]+ / [0-9.]+ \| .* \| 0 \|$", output, re.MULTILINE)
    assert "NOT A RESULT" not in output
    assert re.search(r"^saturation: [0-9]+ turns/s", output, re.MULTILINE)
    assert "20 streams open at once (2 s each): 0 errors" in output
