"""Vector search backends, chosen by MEMORY_SEARCH_BACKEND (dotted path) or by the database in use."""

from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from memories.search_backends.base import EVERYTHING, Scope, SearchBackend, VectorMatch

BACKENDS_BY_VENDOR = {
    "postgresql": "memories.search_backends.pgvector.PgVectorSearch",
}
DEFAULT_BACKEND = "memories.search_backends.exact.ExactNumpySearch"


def get_search_backend() -> SearchBackend:
    path = settings.MEMORY_SEARCH_BACKEND or BACKENDS_BY_VENDOR.get(connection.vendor, DEFAULT_BACKEND)
    return import_string(path)()


__all__ = ["EVERYTHING", "Scope", "SearchBackend", "VectorMatch", "get_search_backend"]
