"""Background work of the memory engine; the only module here that queues anything.

A heavy user's dedicated vector index is built by the task worker (CREATE INDEX CONCURRENTLY cannot run in a
request's transaction, and takes seconds).
"""

import logging

from django.db import transaction
from django_tasks import task

from core.daily import COUNT_EVERY_SECONDS, counted_between, record_daily_counts
from core.periodic import PeriodicJob
from memories import user_indexes
from memories.models import Memory
from memories.owners import Owner

logger = logging.getLogger(__name__)


@task()
def build_user_index_task(space_id: int, user_id: str) -> str:
    """Build a heavy user's dedicated vector index (memories.user_indexes); returns the index's status."""
    return user_indexes.build_user_index(Owner(space_id, user_id)).status


def schedule_user_index_if_needed(owner: Owner) -> bool:
    """Queue a dedicated index build for a user who has just become heavy; True if queued. Never raises: an
    index is an optimisation, and its failure must not fail what the caller was doing."""
    try:
        if not user_indexes.reserve_index(owner):
            return False
        # After commit: the build cannot run inside the caller's transaction, nor before the row is visible.
        transaction.on_commit(lambda: build_user_index_task.enqueue(owner.space_id, owner.user_id))
    except Exception:
        logger.exception("could not queue a dedicated vector index", extra={"user_id": owner.user_id})
        return False
    logger.info("dedicated vector index queued", extra={"user_id": owner.user_id, "space_id": owner.space_id})
    return True


def count_memories_per_day() -> None:
    """Memories stored today and yesterday, for the admin index's chart."""
    record_daily_counts(MEMORIES_PER_DAY, counted_between(Memory.objects.all(), "created_at"))


MEMORIES_PER_DAY = "memories stored"
PERIODIC_JOBS = [PeriodicJob("count memories per day", COUNT_EVERY_SECONDS, count_memories_per_day)]
