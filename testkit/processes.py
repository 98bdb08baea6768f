"""The project's own processes, started for tests and benchmarks: gunicorn, the development server, the worker.

Each takes a complete environment (the caller decides database, cache, secrets and timings) and runs from the
repository root, so gunicorn reads gunicorn.conf.py exactly as in production.
"""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until `url` answers 200; RuntimeError if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Server:
    """An HTTP server of the project on a free port; `url` once started."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None):
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = log_path  # where its stdout and stderr go (inherited when None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "Server":
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 (the child holds it open)
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=log)
        if log:
            log.close()
        try:
            wait_for_http(f"{self.url}/healthz", self.process)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class Gunicorn(Server):
    """gunicorn as gunicorn.conf.py configures it; WEB_WORKERS, WEB_THREADS in `env` size it."""

    def __init__(self, env: dict[str, str], worker_class: str = "gthread", log_path: Path | None = None):
        super().__init__({"WEB_ACCESS_LOG": "", "LOG_LEVEL": "WARNING", **env}, log_path)
        self.worker_class = worker_class

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "memoryplatform.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--worker-class",
            self.worker_class,
        ]


class AsgiServer(Server):
    """The ASGI server as production runs it for the Custom LLM endpoint: gunicorn with uvicorn workers."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None):
        super().__init__({"WEB_ACCESS_LOG": "", "LOG_LEVEL": "WARNING", "WEB_WORKERS": "1", **env}, log_path)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "memoryplatform.asgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--worker-class",
            "uvicorn_worker.UvicornWorker",
        ]


class DevelopmentServer(Server):
    """`manage.py runserver`, as scripts/run starts it (threaded, without the autoreloader)."""

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]


class Worker:
    """`manage.py run_worker` in its own process; its output is kept in `output`."""

    def __init__(self, env: dict[str, str], heartbeat_file: str, interval: float = 0.1):
        self.env = env
        self.heartbeat_file = heartbeat_file
        self.interval = interval
        self.process: subprocess.Popen | None = None
        self.output = ""

    def start(self) -> "Worker":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_worker",
                "--interval",
                str(self.interval),
                "--heartbeat-file",
                self.heartbeat_file,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as the OOM killer or a lost machine would do it."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.output += self.process.stdout.read()
        self.process.stdout.close()

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None and not self.process.stdout.closed:
            self.output += self.process.stdout.read()
            self.process.stdout.close()
