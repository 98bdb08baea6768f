"""A database outage is answered in JSON, in one sentence, with 503: never Django's HTML error page.

ElevenLabs reads a webhook's non-2xx as a failure (retried on 5xx when the operator enabled retries) and an agent
may read a tool's error aloud; an operator's script wants JSON. The admin keeps Django's own pages.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable right now; try again shortly."


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        # Unavailable, not wrong: a refused or dropped connection, a server shutting down. Errors about the data
        # itself (DataError, IntegrityError) are bugs to fix, and stay 500s.
        if not isinstance(exception, OperationalError | InterfaceError) or request.path.startswith("/admin/"):
            return None
        logger.error(
            "database unavailable",
            extra={"path": request.path, "error": f"{type(exception).__name__}: {exception}"[:300]},
        )
        response = JsonResponse({"error": DATABASE_UNAVAILABLE}, status=503)
        response["Retry-After"] = "5"
        return response
