"""A database outage is answered in JSON, in one sentence, with 503: never Django's HTML error page.

ElevenLabs reads a webhook's non-2xx as a failure (retried on 5xx when the operator enabled retries) and an agent
may read a tool's error aloud; an operator's script wants JSON. The admin keeps Django's own pages.
"""

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings as django_settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable right now; try again shortly."


class DatabaseUnavailableMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        return self.get_response(request)  # a coroutine under ASGI: the handler awaits it

    def process_exception(self, request: HttpRequest, exception: Exception):
        # Unavailable, not wrong: a refused or dropped connection, a server shutting down. Errors about the data
        # itself (DataError, IntegrityError) are bugs to fix, and stay 500s.
        if not isinstance(exception, OperationalError | InterfaceError) or request.path.startswith("/admin/"):
            return None
        return database_unavailable(request, exception)


def database_unavailable(request: HttpRequest, exception: Exception) -> JsonResponse:
    """The answer to a request the database could not serve (also calls.middleware's, before this middleware)."""
    logger.error(
        "database unavailable",
        extra={"path": request.path, "error": f"{type(exception).__name__}: {exception}"[:300]},
    )
    response = JsonResponse({"error": DATABASE_UNAVAILABLE}, status=503)
    response["Retry-After"] = "5"
    return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise (the admin's static files from gunicorn itself), usable under ASGI too: WhiteNoise's own
    middleware is sync-only, which would push every request of the ASGI server through one thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=django_settings):
        super().__init__(get_response, settings)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if not self.is_async:
            return super().__call__(request)
        return self.__acall__(request)

    async def __acall__(self, request: HttpRequest):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
