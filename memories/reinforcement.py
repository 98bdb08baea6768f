"""Retrieval reinforcement: what a retrieval writes back (salience, access count, last access), and when.

`reinforce` is the write. A memory query records which memories it returned in the `buffer`; a background
thread of the process applies them every MEMORY_REINFORCE_DELAY_SECONDS in as few UPDATEs as there are distinct
hit counts. The query's answer does not wait for the write (about a quarter of a memory query's time on
PostgreSQL). A crash loses at most that last interval of reinforcement, which is bookkeeping, never a memory.
With a delay of 0 the update runs in the request.
"""

import atexit
import logging
import threading
from collections import Counter, defaultdict

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from memories.database import relaxed_commit
from memories.models import Memory

logger = logging.getLogger(__name__)


def reinforce(memory_ids: list[int], times: int = 1) -> int:
    """Record `times` retrievals of each memory: bump the access count and recency, and move salience
    towards the cap.

    Per retrieval salience += MEMORY_REINFORCE_STEP * (1 - salience), never above MEMORY_REINFORCE_CAP (0.9)
    and never lowered: from 0.5 it takes about 34 retrievals to reach 0.75 and it never saturates at 1.0.
    `times` retrievals at once apply the same steps in closed form. One UPDATE for all of them, committed
    without waiting for the WAL flush (see relaxed_commit).
    """
    if not memory_ids or times < 1:
        return 0
    step, cap = settings.MEMORY_REINFORCE_STEP, settings.MEMORY_REINFORCE_CAP
    remaining = (1.0 - step) ** times  # 1 - salience shrinks by this factor
    if connection.vendor == "postgresql":
        # The ids as one array parameter: the ORM's IN list of a second's thousands of ids (one per query's
        # answer) was compiled in the web process, parsed by PostgreSQL, and most of the flush's cost.
        with relaxed_commit(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Memory._meta.db_table} SET access_count = access_count + %s, last_accessed_at = %s, "
                "salience = GREATEST(salience, LEAST(%s, 1.0 - (1.0 - salience) * %s)) WHERE id = ANY(%s)",
                [times, timezone.now(), cap, remaining, list(memory_ids)],
            )
            return cursor.rowcount
    boosted = Least(Value(cap), Value(1.0) - (Value(1.0) - F("salience")) * Value(remaining))
    with relaxed_commit():
        return Memory.objects.filter(pk__in=memory_ids).update(
            access_count=F("access_count") + times,
            last_accessed_at=timezone.now(),
            salience=Greatest(F("salience"), boosted),
        )


class ReinforcementBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[int] = Counter()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, memory_ids: list[int]) -> None:
        if not memory_ids:
            return
        if settings.MEMORY_REINFORCE_DELAY_SECONDS <= 0:
            reinforce(memory_ids)
            return
        with self._lock:
            self._counts.update(memory_ids)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="reinforcement", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Apply everything recorded so far; returns how many memories were updated."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        by_times: dict[int, list[int]] = defaultdict(list)
        for memory_id, times in counts.items():
            by_times[times].append(memory_id)
        return sum(reinforce(ids, times=times) for times, ids in sorted(by_times.items()))

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.MEMORY_REINFORCE_DELAY_SECONDS):
                try:
                    close_old_connections()
                    self.flush()
                except DatabaseError as error:  # an outage: these counts are lost, which costs nothing
                    connections.close_all()
                    logger.warning("reinforcement flush failed", extra={"error": f"{type(error).__name__}"})
                except Exception:
                    logger.exception("reinforcement flush failed")
        finally:
            connections.close_all()


buffer = ReinforcementBuffer()


@atexit.register
def _flush_at_exit() -> None:
    try:
        buffer.flush()
    except Exception:
        logger.warning("reinforcements lost at exit", exc_info=True)
