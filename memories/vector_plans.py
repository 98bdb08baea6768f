"""The pgvector physical design, in one place: which structure serves a user's vector search, and its SQL.

Three plans (docs/memories.md and docs/benchmarks.md have the measurements behind the rules):
- exact: the user's rows through the (space, user_id, superseded_by) btree, every distance computed. Exact, and the
  fastest while a user has fewer than MEMORY_HNSW_MIN_USER_MEMORIES memories.
- shared HNSW: the table's HNSW index with iterative scans, filtered by user. For bigger users.
- dedicated: the user's own partial HNSW index (memories.user_indexes builds it for the heaviest users), over
  `DEDICATED_EXPRESSION`, which only those indexes hold, so PostgreSQL cannot pick another index for it.

The search backend (search_backends.pgvector) and index management (user_indexes) both read this module: the
expression, the index names, what makes a dedicated index healthy, and the per-process plan cache.
"""

import enum
import hashlib
import time

from django.conf import settings
from django.db import connection

from memories.models import Memory, UserVectorIndex
from memories.owners import Owner

TABLE = Memory._meta.db_table
INDEX_TABLE = UserVectorIndex._meta.db_table
DEDICATED_INDEX_PREFIX = "memory_user_hnsw_"
PLAN_CACHE_SIZE = 100_000


class Plan(enum.StrEnum):
    EXACT = "exact"
    SHARED_HNSW = "hnsw"
    DEDICATED = "dedicated"


def dedicated_type() -> str:
    """Half precision vectors: half the index size; distances are recomputed exactly for the rows found."""
    return f"halfvec({Memory._meta.get_field('embedding').dimensions})"


def dedicated_expression() -> str:
    """What dedicated indexes are built over and the dedicated plan orders by."""
    return f"embedding::{dedicated_type()}"


def dedicated_index_name(owner: Owner) -> str:
    """`memory_user_hnsw_` + a hash of the space and user id: no user id appears in the schema."""
    return DEDICATED_INDEX_PREFIX + hashlib.sha256(owner.key.encode()).hexdigest()[:24]


# A user's dedicated index serves searches when its row says ready and the index is in the schema and valid (a
# restore without it, a manual DROP or an interrupted build leave a row that must not be trusted).
HEALTHY_DEDICATED_INDEX = (
    f"EXISTS (SELECT 1 FROM {INDEX_TABLE} record JOIN pg_class index_class ON index_class.relname = record.index_name "
    "JOIN pg_index ON pg_index.indexrelid = index_class.oid "
    f"WHERE record.space_id = {{space}} AND record.user_id = {{user}} "
    f"AND record.status = '{UserVectorIndex.Status.READY}' AND pg_index.indisvalid)"
)


def healthy_dedicated_users() -> set[Owner]:
    """The users whose dedicated index serves searches now."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT space_id, user_id FROM {INDEX_TABLE} outer_record "
            f"WHERE {HEALTHY_DEDICATED_INDEX.format(space='outer_record.space_id', user='outer_record.user_id')}"
        )
        return {Owner(*row) for row in cursor.fetchall()}


def current_memories(owner: Owner, cap: int | None = None) -> int:
    """The user's current memories; with `cap`, counting stops there (an index-only scan of at most `cap` rows)."""
    queryset = Memory.objects.current().for_user(owner)
    if cap is None:
        return queryset.count()
    return queryset.values("pk")[:cap].count()


class PlanCache:
    """Each process remembers a user's plan for MEMORY_PLAN_CACHE_SECONDS.

    Deciding costs a round trip (the capped count reads up to MEMORY_HNSW_MIN_USER_MEMORIES index entries: ~20 ms
    for a heavy user). A user who crosses the threshold, or whose index becomes ready, is served by the other
    plan a minute later at worst, which changes speed, not results. `forget` makes this process decide afresh.
    """

    def __init__(self) -> None:
        self._plans: dict[tuple[Owner, int], tuple[Plan, float]] = {}

    def choose(self, owner: Owner) -> Plan:
        threshold = settings.MEMORY_HNSW_MIN_USER_MEMORIES
        if threshold <= 0:
            return Plan.EXACT
        now = time.monotonic()
        remembered = self._plans.get((owner, threshold))
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        plan = decide_plan(owner, threshold)
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[(owner, threshold)] = (plan, now + settings.MEMORY_PLAN_CACHE_SECONDS)
        return plan

    def forget(self, owner: Owner | None = None) -> None:
        """Drop the remembered plans of one user, or of everyone."""
        if owner is None:
            self._plans.clear()
            return
        for key in [key for key in self._plans if key[0] == owner]:
            del self._plans[key]


def decide_plan(owner: Owner, threshold: int) -> Plan:
    """Dedicated if the user has a healthy index of their own, shared HNSW from `threshold` memories, else exact.
    One round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {HEALTHY_DEDICATED_INDEX.format(space='%s', user='%s')}, "
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} WHERE space_id = %s AND user_id = %s "
            "AND superseded_by_id IS NULL LIMIT %s) AS capped)",
            [owner.space_id, owner.user_id, owner.space_id, owner.user_id, threshold],
        )
        dedicated, count = cursor.fetchone()
    if dedicated:
        return Plan.DEDICATED
    return Plan.SHARED_HNSW if count >= threshold else Plan.EXACT


plans = PlanCache()
