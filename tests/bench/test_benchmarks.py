"""Each benchmark runs once in its tiny mode: it must work end to end. No timing is asserted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(*args: str, env: dict | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.postgres
def test_vector_search_benchmark_tiny():
    output = run_benchmark("bench/vector_search.py", "--tiny")
    assert "| heavy (300) |" in output
    assert "recall@10" in output
