"""gunicorn's configuration (read from the working directory: `gunicorn memoryplatform.wsgi`), from the environment.

Threaded workers (gthread): a request waiting on a slow embedding provider holds one thread, not a whole
process, so the phone-is-ringing initiation and the health checks are still served while a few tool calls wait
out their time budget (docs/benchmarks.md measures sync against gthread under a slow provider).
"""

import os
import shutil
import tempfile

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections over them. On one
# shared socket, whichever worker woke first accepted a burst of keep-alive connections and kept them: 32 clients
# got 560 to 1,340 memory-tool answers a second depending on the draw, with one worker's core idle (each process
# is bound to one core by the GIL); on their own sockets, 1,220 to 1,330 every time (docs/benchmarks.md).
# Not for a Unix socket: each worker would make its own file, replacing the last one's.
reuse_port = os.environ.get("WEB_REUSE_PORT", "1") != "0" and not bind.startswith("unix:")
# Longer than any request's own budget (the tool answers within TOOL_TIME_BUDGET_SECONDS, 3 s by default).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# The application writes one JSON access line per request, with its request id (core.requests); gunicorn's own
# plain-text access log is off unless WEB_ACCESS_LOG names a file (or "-").
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Request metrics from every worker process: each writes its samples here and /metrics adds them up. A fresh
# directory per server start (stale files would count old workers forever).
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="memoryplatform-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Once the application is loaded: what is alive now (Django, the libraries, the model) lives as long as the
    process, so the garbage collector stops walking it. A full collection walked 136,000 such objects, about
    70 ms that any request could wait behind; now it walks what requests and callers' copies made since."""
    import gc

    gc.collect()  # the start-up's garbage first, or it would be kept forever
    gc.freeze()
