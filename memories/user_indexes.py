"""Dedicated HNSW indexes for the heaviest users (PostgreSQL + pgvector only).

The shared HNSW index covers every user's memories; a search for one user walks it and drops the other
users' rows (iterative scans). For a user with a few thousand memories that filter keeps a small share of
what the walk visits, so the walk must be long (ef_search 200) and still misses neighbours. pgvector's advice
for a filter on a few distinct values is a partial index: here one HNSW index per heavy user,
`WHERE space_id = <its space> AND user_id = '<that user>'`, over the vectors as halfvec, which that user's
searches walk (the search sends the ids as bound parameters of an unprepared statement, so PostgreSQL plans with
their values and can prove the partial index applies). Measured in docs/benchmarks.md.

Each index costs about 4 KB per memory (half what the shared index costs) and is opened on every
insert into the memories table, so only the MEMORY_USER_INDEX_MAX users with the most memories, from
MEMORY_USER_INDEX_MIN_MEMORIES on, get one. A user who crosses the threshold gets theirs from the task
worker after a post-call event (`memories.tasks`); `manage.py sync_user_indexes` builds what is missing,
retries failures and drops what is no longer needed. A forgotten user's index is dropped with their data.
The index's expression, names and health are memories.vector_plans'; this module builds, drops and syncs.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from memories.models import UserVectorIndex
from memories.owners import Owner
from memories.vector_plans import (
    DEDICATED_INDEX_PREFIX,
    TABLE,
    current_memories,
    dedicated_expression,
    dedicated_index_name,
    healthy_dedicated_users,
    plans,
)

logger = logging.getLogger(__name__)
# The index is over the vectors cast to halfvec (half the size: about 80 MB for 20,000 memories), which also
# makes it unmistakable: only the dedicated plan orders by that expression, so PostgreSQL cannot pick the
# shared index instead (with the same expression it did, on cost; docs/benchmarks.md) and the shared plan
# never walks a dedicated index. Results are re-ranked by the exact distance. Graph parameters are richer
# than the shared index's (m 16, ef_construction 64): one user's memories are tightly clustered, and on the
# HTTP benchmark's heavy user recall@15 at ef_search 40 went from 0.979 to 0.999 for 12 s of build instead
# of 7. The build's memory is raised for its session only, so the graph is built in memory, not on disk.
BUILD_SQL = (
    "CREATE INDEX CONCURRENTLY {name} ON {table} USING hnsw (({expression}) halfvec_cosine_ops) "
    "WITH (m = 24, ef_construction = 128) WHERE space_id = {space} AND user_id = {user}"
)
BUILD_MEMORY = "512MB"


def supported() -> bool:
    return connection.vendor == "postgresql"


def enabled() -> bool:
    return supported() and settings.MEMORY_USER_INDEX_MIN_MEMORIES > 0 and settings.MEMORY_USER_INDEX_MAX > 0


def heaviest_users(min_memories: int, limit: int) -> list[tuple[Owner, int]]:
    """(user, current memories) of the `limit` users with the most, at least `min_memories` each (any space)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT space_id, user_id, COUNT(*) AS memories FROM {TABLE} WHERE superseded_by_id IS NULL "
            "GROUP BY space_id, user_id HAVING COUNT(*) >= %s ORDER BY memories DESC, space_id, user_id LIMIT %s",
            [min_memories, limit],
        )
        return [(Owner(space_id, user_id), count) for space_id, user_id, count in cursor.fetchall()]


def existing_indexes() -> dict[str, bool]:
    """Dedicated indexes present in the schema: name -> valid (False: a build that did not finish)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT index_class.relname, pg_index.indisvalid FROM pg_index "
            "JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid "
            "JOIN pg_class table_class ON table_class.oid = pg_index.indrelid "
            "WHERE table_class.relname = %s AND index_class.relname LIKE %s",
            [TABLE, DEDICATED_INDEX_PREFIX + "%"],
        )
        return dict(cursor.fetchall())


def build_user_index(owner: Owner) -> UserVectorIndex:
    """Build (or rebuild) `owner`'s dedicated index, without blocking writes; returns its row.

    Runs outside any transaction (CREATE INDEX CONCURRENTLY cannot run in one). A failed build leaves no
    index behind: the row says failed, with the error, and `sync_user_indexes` tries again.
    """
    if not supported():
        raise RuntimeError("dedicated vector indexes need PostgreSQL with pgvector")
    if connection.in_atomic_block:
        raise RuntimeError("build_user_index cannot run inside a transaction (CREATE INDEX CONCURRENTLY)")
    record, _ = UserVectorIndex.objects.get_or_create(
        space_id=owner.space_id, user_id=owner.user_id, defaults={"index_name": dedicated_index_name(owner)}
    )
    name = record.index_name
    record.status = UserVectorIndex.Status.BUILDING
    record.memories_at_build = current_memories(owner)
    record.last_error = ""
    record.save(update_fields=["status", "memories_at_build", "last_error"])
    started = time.perf_counter()
    try:
        _drop_index(name)  # a leftover of an interrupted build is invalid and would block the name
        with connection.cursor() as cursor:
            cursor.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
            try:
                cursor.execute(
                    BUILD_SQL.format(
                        name=name,
                        table=TABLE,
                        expression=dedicated_expression(),
                        space=int(owner.space_id),
                        user=_literal(owner.user_id),
                    )
                )
            finally:
                cursor.execute("RESET maintenance_work_mem")
    except Exception as error:
        logger.exception(
            "dedicated vector index build failed",
            extra={"user_id": owner.user_id, "space_id": owner.space_id, "index": name},
        )
        _drop_index(name)
        record.status = UserVectorIndex.Status.FAILED
        record.last_error = f"{type(error).__name__}: {error}"
        _save_unless_forgotten(record, ["status", "last_error"])
        return record
    record.status = UserVectorIndex.Status.READY
    record.build_seconds = round(time.perf_counter() - started, 3)
    record.ready_at = timezone.now()
    if not _save_unless_forgotten(record, ["status", "build_seconds", "ready_at"]):
        _drop_index(name)  # the user was forgotten during the build: their index goes too
        logger.info("dedicated vector index dropped: user forgotten during the build", extra={"index": name})
        return record
    plans.forget(owner)  # this process uses the index at once; the others within a minute
    logger.info(
        "dedicated vector index built",
        extra={
            "user_id": owner.user_id,
            "space_id": owner.space_id,
            "index": name,
            "memories": record.memories_at_build,
            "seconds": record.build_seconds,
        },
    )
    return record


def drop_user_index(owner: Owner) -> bool:
    """Drop `owner`'s dedicated index and its row; True if there was one. Outside a transaction only."""
    record = UserVectorIndex.objects.filter(space_id=owner.space_id, user_id=owner.user_id).first()
    if record is None:
        return False
    _drop_index(record.index_name)
    record.delete()
    plans.forget(owner)
    logger.info(
        "dedicated vector index dropped",
        extra={"user_id": owner.user_id, "space_id": owner.space_id, "index": record.index_name},
    )
    return True


def forget_user_index(owner: Owner) -> int:
    """forget_user's step: delete the row now, drop the index once the deletion has committed."""
    records = UserVectorIndex.objects.filter(space_id=owner.space_id, user_id=owner.user_id)
    names = list(records.values_list("index_name", flat=True))
    records.delete()
    for name in names:
        transaction.on_commit(lambda name=name: _drop_index(name))
    return len(names)


def reserve_index(owner: Owner) -> bool:
    """Record that `owner` gets a dedicated index if they just reached the threshold and there is room; True if
    a build should now be queued (memories.tasks does that).

    Called after each processed post-call event. Cheap for ordinary users: the count stops at the threshold.
    """
    if not enabled() or UserVectorIndex.objects.filter(space_id=owner.space_id, user_id=owner.user_id).exists():
        return False
    threshold = settings.MEMORY_USER_INDEX_MIN_MEMORIES
    if current_memories(owner, cap=threshold) < threshold:
        return False
    if UserVectorIndex.objects.count() >= settings.MEMORY_USER_INDEX_MAX:
        logger.info(
            "dedicated vector index not queued: MEMORY_USER_INDEX_MAX reached", extra={"user_id": owner.user_id}
        )
        return False
    _, created = UserVectorIndex.objects.get_or_create(
        space_id=owner.space_id, user_id=owner.user_id, defaults={"index_name": dedicated_index_name(owner)}
    )
    return created


@dataclass
class SyncPlan:
    build: list[tuple[Owner, int]]  # (user, memories): missing, failed or invalid indexes
    keep: list[tuple[Owner, int]]
    drop: list[Owner]  # users whose index is no longer wanted
    orphans: list[str]  # index names in the schema with no row (a forgotten user whose drop did not run)


def plan_sync(min_memories: int, max_indexes: int) -> SyncPlan:
    """What `sync` would do: the `max_indexes` heaviest users from `min_memories` on get an index.

    A user who already has one keeps it down to half the threshold, so that a user hovering around it is not
    rebuilt again and again.
    """
    wanted = heaviest_users(min_memories, max_indexes)
    records = {Owner(record.space_id, record.user_id): record for record in UserVectorIndex.objects.all()}
    healthy = healthy_dedicated_users()
    plan = SyncPlan(build=[], keep=[], drop=[], orphans=[])
    for owner, count in wanted:
        (plan.keep if owner in healthy else plan.build).append((owner, count))
    wanted_owners = {owner for owner, _ in wanted}
    for owner in records:
        if owner in wanted_owners:
            continue
        count = current_memories(owner)
        if owner in healthy and count >= min_memories // 2 and len(plan.keep) + len(plan.build) < max_indexes:
            plan.keep.append((owner, count))
        else:
            plan.drop.append(owner)
    known = {record.index_name for record in records.values()}
    plan.orphans = sorted(name for name in existing_indexes() if name not in known)
    return plan


def sync(plan: SyncPlan, report: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Carry out `plan`: drop first (room for the new ones), then build, heaviest user first."""
    counts = {"built": 0, "failed": 0, "dropped": 0, "kept": len(plan.keep)}
    for name in plan.orphans:
        _drop_index(name)
        counts["dropped"] += 1
        report(f"dropped orphan index {name}")
    for owner in plan.drop:
        drop_user_index(owner)
        counts["dropped"] += 1
        report(f"dropped the index of {owner}")
    for position, (owner, count) in enumerate(plan.build, start=1):
        report(f"[{position}/{len(plan.build)}] building the index of {owner} ({count:,} memories)")
        record = build_user_index(owner)
        if record.status == UserVectorIndex.Status.READY:
            counts["built"] += 1
            report(f"[{position}/{len(plan.build)}] built in {record.build_seconds:.1f} s")
        else:
            counts["failed"] += 1
            report(f"[{position}/{len(plan.build)}] FAILED: {record.last_error}")
    return counts


def _save_unless_forgotten(record: UserVectorIndex, fields: list[str]) -> bool:
    """Save `fields` of `record`; False if its row is gone (forget_user deleted it meanwhile)."""
    values = {field: getattr(record, field) for field in fields}
    return bool(UserVectorIndex.objects.filter(pk=record.pk).update(**values))


def _drop_index(name: str) -> None:
    if not name.startswith(DEDICATED_INDEX_PREFIX) or not name.replace("_", "").isalnum():
        raise ValueError(f"not a dedicated index name: {name!r}")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def _literal(value: str) -> str:
    """`value` as a quoted SQL literal (DDL takes no bound parameters), quoted by psycopg itself."""
    connection.ensure_connection()
    return sql.Literal(value).as_string(connection.connection)
