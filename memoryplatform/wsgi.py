"""WSGI entry point (gunicorn memoryplatform.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryplatform.settings")

application = get_wsgi_application()

# Fail at start-up, not at the first write, when the embedding provider does not fit the schema.
from memories.checks import assert_ready_to_serve  # noqa: E402

assert_ready_to_serve()
