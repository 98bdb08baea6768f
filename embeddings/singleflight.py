"""Single flight: concurrent misses on the same key in one process make one provider call.

The first thread to miss a key owns it; threads that miss the same key while the owner is embedding wait
for the owner's result (or its error) instead of calling the provider again. Across processes there is no
coordination: two gunicorn workers that miss the same text at the same instant both call the provider
once, and the second write simply overwrites the first with the same vector.
"""

import threading
from collections.abc import Iterable, Mapping


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


class SingleFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}

    def claim(self, keys: Iterable[str]) -> tuple[list[str], dict[str, _Call]]:
        """Split keys into those this thread must fetch and those already being fetched by another."""
        owned: list[str] = []
        waiting: dict[str, _Call] = {}
        with self._lock:
            for key in keys:
                call = self._calls.get(key)
                if call is None:
                    self._calls[key] = _Call()
                    owned.append(key)
                else:
                    waiting[key] = call
        return owned, waiting

    def resolve(self, values: Mapping[str, bytes]) -> None:
        with self._lock:
            calls = [(self._calls.pop(key, None), value) for key, value in values.items()]
        for call, value in calls:
            if call is not None:
                call.value = value
                call.done.set()

    def fail(self, keys: Iterable[str], error: BaseException) -> None:
        with self._lock:
            calls = [self._calls.pop(key, None) for key in keys]
        for call in calls:
            if call is not None:
                call.error = error
                call.done.set()

    @staticmethod
    def wait(call: _Call, timeout: float) -> bytes:
        """The owner's value; re-raises the owner's error; TimeoutError if it takes longer than `timeout`."""
        if not call.done.wait(timeout):
            raise TimeoutError("waited too long for a concurrent embedding of the same text")
        if call.error is not None:
            raise call.error
        assert call.value is not None
        return call.value
