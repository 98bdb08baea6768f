"""Configuration as an operator meets it: every setting documented, the env file example loads, and the compose
file is valid, reads only the operator's env file, migrates once and can scale."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
READ = re.compile(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z0-9_]+)"|os\.environ\.get\(\s*"([A-Z0-9_]+)"')
OPERATOR_KEY = "operator-chosen-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"
COMPOSE_VARIABLES = {"MEMORY_ENV_FILE", "POSTGRES_PASSWORD", "WEB_PORT", "REDIS_MAXMEMORY"}


def names_read(path: Path) -> set[str]:
    return {first or second for first, second in READ.findall(path.read_text())}


def test_every_variable_the_code_reads_is_documented():
    read = names_read(ROOT / "memoryplatform" / "settings.py") | names_read(ROOT / "gunicorn.conf.py")
    assert len(read) > 100
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    assert read <= documented, sorted(read - documented)
    assert documented >= COMPOSE_VARIABLES


def example_env(tmp_path: Path) -> Path:
    text = (ROOT / "deploy" / "memoryplatform.env.example").read_text()
    text = text.replace("SECRET_KEY=\n", f"SECRET_KEY={OPERATOR_KEY}\n")
    path = tmp_path / "memoryplatform.env"
    path.write_text(text)
    return path


def parse_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def test_the_example_env_file_configures_a_service_that_passes_its_checks(tmp_path):
    values = parse_env_file(example_env(tmp_path))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    assert set(values) <= documented
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "EMBEDDING_", "DEBUG", "SECRET_KEY"))
        },
        **values,
        "READ_DOTENV": "0",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    assert binary, "Debian's docker-compose validates docker-compose.yml: run scripts/install-services"
    clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARIABLES}
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_is_valid_migrates_once_and_scales(tmp_path):
    result = docker_compose("config", "-q", env={"MEMORY_ENV_FILE": str(example_env(tmp_path))})
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(docker_compose("config", env={"MEMORY_ENV_FILE": str(example_env(tmp_path))}).stdout)
    services = config["services"]
    assert {"db", "redis", "migrate", "web", "worker", "llm", "proxy"} <= set(services)
    assert "uvicorn_worker.UvicornWorker" in services["llm"]["command"]
    for name in ("web", "worker", "llm"):
        service = services[name]
        assert "ports" not in service and "container_name" not in service, f"{name} must scale"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "migrate" not in " ".join(service["command"])
        assert service["environment"]["READ_DOTENV"] == "0"
        assert service["environment"]["SECRET_KEY"] == OPERATOR_KEY, "the operator's env file reaches it"
        assert service["environment"]["WEB_THREADS"] == "8"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "manage.py", "worker_health"]
    assert services["proxy"]["ports"]


@pytest.mark.parametrize("dotenv_name", ["SECRET_KEY", "DEBUG", "ELEVENLABS_TOOL_SECRETS", "METRICS_TOKEN"])
def test_compose_never_reads_the_development_env(dotenv_name):
    compose = (ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{(\w+)", compose))
    assert interpolated == COMPOSE_VARIABLES
    assert dotenv_name in (ROOT / "scripts" / "run").read_text()  # what scripts/run writes to .env ...
    assert dotenv_name not in interpolated  # ... is never taken from it by compose


def test_compose_without_the_operators_env_file_refuses_clearly(tmp_path):
    result = docker_compose("config", "-q", env={"MEMORY_ENV_FILE": str(tmp_path / "missing.env")})
    assert result.returncode != 0 and "missing.env" in result.stderr


def readme_endpoints() -> set[tuple[str, str]]:
    """(method, path) pairs of README's endpoint table: rows like | `GET, PATCH /api/memories/{id}` | … |."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Endpoints") : text.index("## Operating it")]
    pairs = set()
    for cell in re.findall(r"^\| `([A-Z, ]+) (/[^`]*)`", table, re.MULTILINE):
        methods, path = cell
        pairs |= {(method.strip(), path) for method in methods.split(",")}
    return pairs


def test_readme_endpoint_table_matches_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert len(documented) >= 13
    in_readme = readme_endpoints()
    assert documented <= in_readme, sorted(documented - in_readme)
    schema_itself = {("GET", "/api/schema/")}
    undocumented_api = {
        pair
        for pair in in_readme - documented - schema_itself
        if pair[1].startswith(("/api/", "/tools/", "/webhooks/"))
    }
    assert not undocumented_api, sorted(undocumented_api)
