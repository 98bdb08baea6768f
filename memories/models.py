import hashlib

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from memories.fields import EmbeddingField
from memories.sectors import Sector


def text_fingerprint(text: str) -> str:
    """Hash of the text with case and whitespace folded: identical memories collide, nothing else."""
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


class MemoryQuerySet(models.QuerySet):
    def for_user(self, user_id: str) -> "MemoryQuerySet":
        return self.filter(user_id=user_id)

    def current(self) -> "MemoryQuerySet":
        """Memories still in force: not superseded by a newer fact."""
        return self.filter(superseded_by__isnull=True)


class Memory(models.Model):
    """One thing remembered about one user: something they said, in their own words, or something derived from it.

    Two layers (docs/memories.md): utterances are the caller's turns, verbatim, never superseded; summaries,
    data-collection results, facts and notes are derived (or added) and point to the turns they came from.
    """

    class Kind(models.TextChoices):
        UTTERANCE = "utterance", "the caller's own words (a transcript turn)"
        SUMMARY = "summary", "a call's summary"
        DATA = "data_collection", "a data-collection result of a call"
        FACT = "fact", "a fact extracted by the LLM"
        NOTE = "note", "added by an operator or the remember tool"

    DERIVED = (Kind.SUMMARY, Kind.DATA, Kind.FACT)

    user_id = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField()
    text_hash = models.CharField(max_length=64, editable=False)
    sector = models.CharField(max_length=16, choices=Sector.choices, default=Sector.SEMANTIC)
    extra_sectors = models.JSONField(default=list, blank=True, help_text="Additional sectors, besides the primary.")
    embedding = EmbeddingField()
    embedding_model = models.CharField(max_length=200)
    salience = models.FloatField(default=0.5)
    created_at = models.DateTimeField(default=timezone.now)
    occurred_at = models.DateTimeField(
        default=timezone.now, help_text="When it was said or happened (a turn: the call's start + its time in call)."
    )
    last_accessed_at = models.DateTimeField(default=timezone.now)
    access_count = models.PositiveIntegerField(default=0)
    source_conversation_id = models.CharField(max_length=128, blank=True)
    source_turns = models.JSONField(default=list, blank=True, help_text="Transcript turn indexes it came from.")
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    valid_until = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "superseded_by"], name="memory_user_current"),
            models.Index(fields=["user_id", "sector"], name="memory_user_sector"),
            models.Index(fields=["user_id", "-created_at"], name="memory_user_recent"),
            models.Index(fields=["user_id", "-occurred_at"], name="memory_user_occurred"),
            models.Index(fields=["user_id", "text_hash"], name="memory_user_text"),
            models.Index(fields=["source_conversation_id"], name="memory_conversation"),
        ]
        constraints = [
            # Identical current memories of one user cannot exist twice, even under concurrent writes.
            models.UniqueConstraint(
                fields=["user_id", "text_hash"],
                condition=models.Q(superseded_by__isnull=True),
                name="memory_unique_current_text",
            ),
            models.CheckConstraint(condition=models.Q(salience__gte=0, salience__lte=1), name="memory_salience_0_1"),
        ]
        verbose_name_plural = "memories"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.text[:60]}"

    def save(self, *args, **kwargs):
        self.text_hash = text_fingerprint(self.text)
        super().save(*args, **kwargs)

    @property
    def sectors(self) -> list[str]:
        return [self.sector, *[sector for sector in self.extra_sectors if sector != self.sector]]


class MemoryLink(models.Model):
    """A weighted edge between two memories of the same user (a waypoint)."""

    class Reason(models.TextChoices):
        SIMILAR = "similar", "similar content"
        SAME_CALL = "same_call", "said in the same call"
        SUPERSEDES = "supersedes", "newer version of the fact"
        MANUAL = "manual", "linked by an operator"

    user_id = models.CharField(max_length=128)
    from_memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="links_out")
    to_memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="links_in")
    weight = models.FloatField(default=0.5)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.SIMILAR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["from_memory", "to_memory"], name="memorylink_unique_pair"),
            models.CheckConstraint(condition=~models.Q(from_memory=models.F("to_memory")), name="memorylink_no_self"),
            models.CheckConstraint(condition=models.Q(weight__gte=0, weight__lte=1), name="memorylink_weight_0_1"),
        ]
        indexes = [models.Index(fields=["user_id", "from_memory"], name="memorylink_user_from")]

    def __str__(self) -> str:
        return f"{self.from_memory_id} -> {self.to_memory_id} ({self.reason}, {self.weight:.2f})"

    def clean(self) -> None:
        if self.from_memory.user_id != self.to_memory.user_id:
            raise ValidationError("A link joins two memories of the same user.")
        self.user_id = self.from_memory.user_id


class UserVectorIndex(models.Model):
    """A dedicated HNSW index over one heavy user's memories (PostgreSQL only; memories.user_indexes).

    The row records the index's state; the index itself is a partial index of the memories table, named
    from a hash of the user id so that no user id appears in the schema.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued, waiting for the worker"
        BUILDING = "building", "building"
        READY = "ready", "ready, used by searches"
        FAILED = "failed", "failed (sync_user_indexes retries)"

    user_id = models.CharField(max_length=128, unique=True)
    index_name = models.CharField(max_length=63, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    memories_at_build = models.PositiveIntegerField(default=0, help_text="Current memories when the build started.")
    build_seconds = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-memories_at_build", "user_id"]
        verbose_name = "user vector index"
        verbose_name_plural = "user vector indexes"

    def __str__(self) -> str:
        return f"{self.index_name} ({self.status})"
