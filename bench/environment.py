"""The environment of a server a benchmark starts: production settings (DEBUG=0), its own data folder, no
in-process worker, quiet logs, the hashing stand-in at 384 dimensions (the local model's size) unless the caller's
environment names a provider. The caller adds its secrets and, for the production stack, its database and Redis."""

import os
from pathlib import Path

BENCH_SECRET_KEY = "bench-only-secret-key-long-and-varied-enough-for-debug-0-0123456789"


def server_environment(data_dir: str | Path, **settings: str) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "memoryplatform.settings",
        "READ_DOTENV": "0",
        "DEBUG": "0",
        "SECRET_KEY": BENCH_SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(data_dir),
        "TASKS_IN_PROCESS_WORKER": "0",
        "EMBEDDING_PROVIDER": os.environ.get("EMBEDDING_PROVIDER", "hashing"),
        "EMBEDDING_DIMENSIONS": os.environ.get("EMBEDDING_DIMENSIONS", "384"),
        **settings,
    }
