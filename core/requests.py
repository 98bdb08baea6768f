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
    given = request.headers.get("X-Request-ID", "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


class RequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.metrics = settings.REQUEST_METRICS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            route = self.route_of(request)
            if self.metrics:
                DURATION.labels(route, request.method).observe(seconds)
                REQUESTS.labels(route, request.method, str(response.status_code)).inc()
            response["X-Request-ID"] = request_id
            access_log.log(
                logging.DEBUG if request.path in PROBES else logging.INFO,
                "request",
                extra={
                    "method": request.method,
                    "path": request.path[:300],
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(1000 * seconds, 2),
                },
            )
            return response
        finally:
            REQUEST_ID.reset(token)

    @staticmethod
    def route_of(request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        if match is None or not match.route:
            return "unmatched"
        route = _REGEX_GROUP.sub(r"<\1>", match.route).replace("\\", "")
        return "/" + route.lstrip("^").removesuffix("$").removesuffix("/?")
