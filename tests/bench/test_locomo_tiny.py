"""The LoCoMo retrieval benchmark runs end to end in its tiny mode (1 conversation, 2 sessions).

Always on the embedded stack and the local semantic model (all-MiniLM-L6-v2): the subprocess gets no
DATABASE_URL, REDIS_URL, OpenAI or LLM-extraction settings, and replays the calls through a real gunicorn and
worker. The dataset is not part of the repository (CC BY-NC); without it this test
fails rather than skips, so a missing dataset cannot go unnoticed. No timing is asserted.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT.parent / "shared" / "datasets" / "locomo10.json"
STRIPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "EMBEDDING_CACHE_REDIS_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "EMBEDDING_PROVIDER",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSIONS",
    "EXTRACTION_LLM_MODEL",
    "DJANGO_SETTINGS_MODULE",
    "DATA_DIR",
)
ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<cells>[0-9.]+(?: \| [0-9.,]+)+) \|$", re.MULTILINE)


@pytest.mark.embedded
def test_locomo_benchmark_tiny():
    if not DATASET.is_file():
        pytest.fail(
            f"LoCoMo dataset missing at {DATASET}: the retrieval benchmark cannot run "
            "(see ../shared/datasets/README.md; it is never copied into the repository)"
        )
    env = {name: value for name, value in os.environ.items() if name not in STRIPPED}
    result = subprocess.run(
        [sys.executable, "bench/locomo.py", "--tiny", "--dataset", str(DATASET)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    header = "| variant | recall@5 | recall@10 | any-evidence@5 | any-evidence@10 | memories stored |"
    assert header in output, output
    assert "embeddings local / all-MiniLM-L6-v2 / 384 dimensions" in output
    assert "evidence turns skipped as carrying nothing: 0 []" in output
    table = output[output.index(header) :].split("\n\n", 1)[0]  # the main table only, not the per-category one
    rows = {
        match["label"]: [float(cell.replace(",", "")) for cell in match["cells"].split(" | ")]
        for match in ROW.finditer(table)
    }
    for label in (
        "floor: every caller turn verbatim, cosine",
        "floor: every caller turn verbatim, cosine + BM25",
        "platform, hybrid (cosine + BM25)",
        "platform as configured (settings)",
        "memory query tool over HTTP (as configured, reinforcing)",
    ):
        assert label in rows, output
        recall_5, recall_10, any_5, any_10, stored = rows[label][:5]
        for value in (recall_5, recall_10, any_5, any_10):
            assert 0.0 <= value <= 1.0, (label, rows[label])
        assert recall_5 <= recall_10 and any_5 <= any_10, (label, rows[label])
        assert stored > 0, (label, rows[label])
