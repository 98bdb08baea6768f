"""The alert rules, checked and unit-tested by Prometheus' own promtool (deploy/prometheus/alerts.test.yml)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.factories import make_staff

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is needed (Debian's prometheus package): run scripts/install-services"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, cwd=RULES)


def test_the_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_rules_fire_when_they_should_and_not_before():
    # Among them: the hit-rate alert is silent 30 minutes after the rate drops below 0.20 and fires a minute later.
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_every_dashboard_query_parses_and_reads_metrics_the_platform_serves(client, tmp_path):
    dashboard = json.loads((RULES.parent / "grafana" / "memory-platform.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 12
    # promtool parses PromQL when it checks rules: one recording rule per query.
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(expressions)]}]
    }
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(tmp_path / "dashboard-rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr

    client.force_login(make_staff("ops"))
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    served = set(re.findall(r"^# TYPE (\w+) ", body, re.MULTILINE))
    served |= {f"{name}_total" for name in served} | {f"{name}_bucket" for name in served}
    for expression in expressions:
        names = set(re.findall(r"\b((?:embedding|memory|task|http)_\w+)", expression))
        assert names and names <= served, (expression, names - served)
