"""The id of the request being served, for every log line written while serving it (memoryplatform.logging)."""

import contextvars

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
