"""Every request: an id, a JSON access log line, and Prometheus metrics per endpoint.

- The id is the caller's `X-Request-ID` when it is a sane token (a load balancer's), else a new one; it is
  answered in `X-Request-ID` and added to every log line written while serving (core.request_context).
- The access log (logger `memoryplatform.access`) has method, path, route, status, duration and the id; health
  probes are logged at DEBUG so they do not drown the rest.
- Metrics: `http_requests_total{route,method,status}` and `http_request_duration_seconds{route,method}`, where
  `route` is the URL pattern (bounded: unknown paths are "unmatched"). prometheus-client directly rather than
  django-prometheus: these two families are all we need, and it is already how /metrics is built. Under
  gunicorn every worker process writes its samples to PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it) and
  /metrics adds them up, so a scrape sees all workers whichever one answers it.
"""

import logging
import os
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from core.request_context import REQUEST_ID

access_log = logging.getLogger("memoryplatform.access")

REGISTRY = CollectorRegistry(auto_describe=False)
REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
PROBES = ("/healthz", "/readyz")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The router's regex routes read like path() routes: ^api/memories/(?P<pk>[^/.]+)$ -> /api/memories/<pk>
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def collect_into(registry: CollectorRegistry) -> None:
    """Add the request metrics to a /metrics registry: every worker's when under gunicorn, else this process'."""
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())


class _ThisProcess:
    def collect(self):
        return REGISTRY.collect()


def request_id_of(request: HttpRequest) -> str:
    return sane_request_id(request.headers.get("X-Request-ID", ""))


def sane_request_id(given: str) -> str:
    """The caller's request id when it is a sane token (a load balancer's), else a new one."""
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def observe(route: str, method: str, path: str, status: int, started: float, metrics: bool = True) -> None:
    """Count and time one answered request, and write its access line (also used by paths that bypass Django's
    handler: calls.asgi)."""
    seconds = time.perf_counter() - started
    if metrics:
        DURATION.labels(route, method).observe(seconds)
        REQUESTS.labels(route, method, str(status)).inc()
    access_log.log(
        logging.DEBUG if path in PROBES else logging.INFO,
        "request",
        extra={
            "method": method,
            "path": path[:300],
            "route": route,
            "status": status,
            "duration_ms": round(1000 * seconds, 2),
        },
    )


class RequestMiddleware:
    """Sync under WSGI, async under ASGI (the Custom LLM endpoint's streams must not go through a thread)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.metrics = settings.REQUEST_METRICS
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        token = REQUEST_ID.set(request_id_of(request))
        started = time.perf_counter()
        try:
            return self.finish(request, self.get_response(request), started)
        finally:
            REQUEST_ID.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        token = REQUEST_ID.set(request_id_of(request))
        started = time.perf_counter()
        try:
            return self.finish(request, await self.get_response(request), started)
        finally:
            REQUEST_ID.reset(token)

    def finish(self, request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        """Metrics, the response header and the access line (a stream is timed to its first byte's readiness)."""
        response["X-Request-ID"] = REQUEST_ID.get()
        observe(self.route_of(request), request.method, request.path, response.status_code, started, self.metrics)
        return response

    @staticmethod
    def route_of(request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        if match is None or not match.route:
            return "unmatched"
        route = _REGEX_GROUP.sub(r"<\1>", match.route).replace("\\", "")
        return "/" + route.lstrip("^").removesuffix("$").removesuffix("/?")
