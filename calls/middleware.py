"""The ElevenLabs tools and webhooks answered before the middleware that only people's pages need.

ElevenLabs' servers call these endpoints with a secret header: nothing of theirs reads a cookie, a session, a user,
a message or a CSRF token. Yet every request went through sessions, CSRF, authentication, messages, clickjacking,
static files and URL resolution: about a tenth of the memory tool's CPU (docs/benchmarks.md). This middleware sits
after RequestMiddleware (request id, metrics, access line) and SecurityMiddleware (HTTPS redirect, security
headers), calls the endpoint's view itself and returns its response up through those two. What it keeps of the
rest: ALLOWED_HOSTS and Content-Length (as CommonMiddleware checks and sets them), a database outage answered as
DatabaseUnavailableMiddleware answers it, Django's own 500 for anything else; with ATOMIC_REQUESTS on, nothing is
short-cut. Every other path goes on down the chain unchanged, as does everything under ASGI (where calls.asgi
routes the Custom LLM endpoints itself).
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest
from django.urls import Resolver404, ResolverMatch, URLPattern, resolve

from core.middleware import database_unavailable


class ElevenLabsEndpointsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self._matches: dict[str, ResolverMatch] | None = None

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.get_response(request)  # a coroutine: the handler awaits it
        match = self.matches().get(request.path_info)
        if match is None:
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
        request.resolver_match = match  # the metrics' route; never changed by anyone
        try:
            response = match.func(request)
        except (OperationalError, InterfaceError) as exception:
            response = database_unavailable(request, exception)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware sets it
        return response

    def matches(self) -> dict[str, ResolverMatch]:
        """Path -> how the URLconf resolves it, for the sync views of calls.urls (made at the first request, when
        the URLconf is loaded anyway); a path the root URLconf sends elsewhere is left to it."""
        if self._matches is None:
            self._matches = {}
            if any(connections[alias].settings_dict.get("ATOMIC_REQUESTS") for alias in connections):
                return self._matches  # views wrapped in a transaction per request: Django's handler does that
            from calls.urls import urlpatterns

            for pattern in urlpatterns:
                if not isinstance(pattern, URLPattern) or iscoroutinefunction(pattern.callback):
                    continue  # the Custom LLM endpoints: Django's handler adapts async views under WSGI
                path = "/" + str(pattern.pattern)
                try:
                    match = resolve(path)
                except Resolver404:
                    continue
                if match.func is pattern.callback and not match.args and not match.kwargs:
                    self._matches[path] = match
        return self._matches
