"""What happens when the cache fails: one place decides, so no caller sprinkles its own try/except.

The cache is an optimisation. When it errors (Redis down, slow, full of garbage), the operation is answered
as a miss or a no-op, the error is counted, and it is logged at most once per `LOG_EVERY` seconds with the
number of errors since the last line. After an error the cache is skipped for `RETRY_AFTER` seconds, so a
dead Redis costs one socket timeout every few seconds instead of one per request.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CacheFailurePolicy:
    def __init__(
        self,
        retry_after: float = 5.0,
        log_every: float = 60.0,
        message: str = "embedding cache unavailable, serving embeddings without it",
        logger_name: str = "embeddings.cache",
    ):
        self.retry_after = retry_after
        self.log_every = log_every
        self.message = message
        self.logger = logging.getLogger(logger_name)
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._last_log = 0.0
        self._unlogged = 0
        # Errors not yet added to the shared counters (they cannot be while the cache is down).
        self.unreported_errors = 0
        self.errors_total = 0

    @property
    def is_open(self) -> bool:
        """True while the cache is being skipped after a recent error."""
        return time.monotonic() < self._open_until

    def record_error(self, operation: str, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._open_until = now + self.retry_after
            self.unreported_errors += 1
            self.errors_total += 1
            self._unlogged += 1
            if now - self._last_log < self.log_every and self._last_log:
                return
            suppressed, self._unlogged, self._last_log = self._unlogged - 1, 0, now
        self.logger.warning(
            self.message,
            extra={"operation": operation, "error": f"{type(error).__name__}: {error}", "suppressed": suppressed},
        )

    def take_unreported(self) -> int:
        with self._lock:
            count, self.unreported_errors = self.unreported_errors, 0
            return count

    def restore_unreported(self, count: int) -> None:
        with self._lock:
            self.unreported_errors += count

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0
            self._last_log = 0.0
            self._unlogged = self.unreported_errors = self.errors_total = 0


def fail_open(default: Callable[[], T]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate an EmbeddingCache method: on any error (or while the circuit is open) return `default()`."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            policy: CacheFailurePolicy = self.failure_policy
            if policy.is_open:
                return default()
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                policy.record_error(method.__name__, error)
                return default()

        return wrapper

    return decorate
