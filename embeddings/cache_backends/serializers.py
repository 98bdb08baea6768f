"""A django-redis serializer that stores bytes as they are and never unpickles anything."""

from typing import Any


class RawBytesSerializer:
    """Values must be bytes; what Redis hands back is returned as bytes, never deserialised into objects.

    django-redis' default (pickle) would let whoever can write to Redis run code in the app.
    """

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = options or {}

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if not isinstance(value, bytes):
            raise TypeError(f"the embedding cache stores bytes only, got {type(value).__name__}")
        return value

    def loads(self, value: bytes) -> bytes:
        return bytes(value)
