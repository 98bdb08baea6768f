"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryplatform.settings")

django_application = get_asgi_application()

from calls.asgi import route  # noqa: E402  (after Django is set up)

# /v1/chat/completions and /v1/responses take the Custom LLM's fast path; everything else is Django.
application = route(django_application)

# Fail at start-up, not at the first write, when the embedding provider does not fit the schema.
from memories.checks import assert_ready_to_serve  # noqa: E402

assert_ready_to_serve()
