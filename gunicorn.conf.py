"""gunicorn's configuration (read from the working directory: `gunicorn memoryplatform.wsgi`), from the environment.

Threaded workers (gthread): a request waiting on a slow embedding provider holds one thread, not a whole
process, so the phone-is-ringing initiation and the health checks are still served while a few tool calls wait
out their time budget (docs/benchmarks.md measures sync against gthread under a slow provider).
"""

import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# Longer than any request's own budget (the tool answers within TOOL_TIME_BUDGET_SECONDS, 3 s by default).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
