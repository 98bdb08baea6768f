import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from memories.fields import EmbeddingField
from memories.owners import DEFAULT_SPACE_ID, Owner
from memories.sectors import Sector


def text_fingerprint(text: str) -> str:
    """Hash of the text with case and whitespace folded: identical memories collide, nothing else."""
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


class Space(models.Model):
    """A memory space (a tenant): the ElevenLabs agents that share their callers' memories.

    Everything remembered is keyed by (space, user id): the same phone number or user id in two spaces is two
    users, and nothing (search, links, dedupe, the API, the admin) crosses spaces. The default space (id 1) is
    the one the deployment's environment secrets open; it was created by the migration that introduced spaces,
    with every memory that existed then. Agents and secrets of a space are the call integration's
    (calls.models.Agent, calls.models.SpaceSecret).
    """

    slug = models.SlugField(max_length=64, unique=True, help_text="Names the space in the API (?space=…).")
    name = models.CharField(max_length=200)
    accepts_unregistered_agents = models.BooleanField(
        default=False,
        help_text="Requests from agents that are registered to no space are served in this space. Only the default "
        "space should (it is how a deployment without registered agents keeps working).",
    )
    extraction_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="The LLM that extracts facts from this space's calls; blank: EXTRACTION_LLM_MODEL.",
    )
    payload_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days a finished call's payload is kept; blank: WEBHOOK_PAYLOAD_RETENTION_DAYS.",
    )
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="memory_spaces",
        help_text="Staff who may see this space in the admin and the API (superusers and holders of "
        "'Can see every memory space' see all).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    DEFAULT_ID = DEFAULT_SPACE_ID

    class Meta:
        ordering = ["id"]
        permissions = [("access_all_spaces", "Can see every memory space")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.pk == DEFAULT_SPACE_ID


def space_key() -> models.ForeignKey:
    """The first column of every memory table: its space (existing rows and unscoped writes: the default). Not
    indexed alone: every index of a memory table starts with (space, user id)."""
    return models.ForeignKey(
        Space, on_delete=models.PROTECT, default=DEFAULT_SPACE_ID, related_name="+", db_index=False
    )


def same_user_reference(to: str, **options) -> models.ForeignKey:
    """A reference to another row of the same user. No database constraint: a foreign key between distributed
    tables must include the distribution column (docs/scaling.md); and no index of its own, nor cascade by
    Django (which would look rows up by this column alone, across users): memories.services deletes and
    detaches what points at a memory, through the user's own indexes. tests/memories/test_distribution_keys.py
    holds every model to this."""
    return models.ForeignKey(to, db_constraint=False, db_index=False, on_delete=models.DO_NOTHING, **options)


class MemoryQuerySet(models.QuerySet):
    def for_user(self, owner: Owner) -> "MemoryQuerySet":
        return self.filter(space_id=owner.space_id, user_id=owner.user_id)

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

    space = space_key()
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
    superseded_by = same_user_reference("self", null=True, blank=True, related_name="supersedes")
    valid_until = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["space", "user_id", "superseded_by"], name="memory_owner_current"),
            models.Index(fields=["space", "user_id", "sector"], name="memory_owner_sector"),
            models.Index(fields=["space", "user_id", "-created_at"], name="memory_owner_recent"),
            models.Index(fields=["space", "user_id", "-occurred_at"], name="memory_owner_occurred"),
            models.Index(fields=["space", "user_id", "source_conversation_id"], name="memory_owner_conversation"),
        ]
        constraints = [
            # Identical current memories of one user cannot exist twice, even under concurrent writes.
            models.UniqueConstraint(
                fields=["space", "user_id", "text_hash"],
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
    def owner(self) -> Owner:
        return Owner(self.space_id, self.user_id)

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

    space = space_key()
    user_id = models.CharField(max_length=128)
    from_memory = same_user_reference(Memory, related_name="links_out")
    to_memory = same_user_reference(Memory, related_name="links_in")
    weight = models.FloatField(default=0.5)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.SIMILAR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "user_id", "from_memory", "to_memory"], name="memorylink_unique_pair"
            ),
            models.CheckConstraint(condition=~models.Q(from_memory=models.F("to_memory")), name="memorylink_no_self"),
            models.CheckConstraint(condition=models.Q(weight__gte=0, weight__lte=1), name="memorylink_weight_0_1"),
        ]
        indexes = [models.Index(fields=["space", "user_id", "to_memory"], name="memorylink_owner_to")]

    def __str__(self) -> str:
        return f"{self.from_memory_id} -> {self.to_memory_id} ({self.reason}, {self.weight:.2f})"

    def clean(self) -> None:
        if self.from_memory.owner != self.to_memory.owner:
            raise ValidationError("A link joins two memories of the same user.")
        self.space_id, self.user_id = self.from_memory.space_id, self.from_memory.user_id


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

    space = space_key()
    user_id = models.CharField(max_length=128)
    index_name = models.CharField(max_length=63, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    memories_at_build = models.PositiveIntegerField(default=0, help_text="Current memories when the build started.")
    build_seconds = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-memories_at_build", "user_id"]
        constraints = [models.UniqueConstraint(fields=["space", "user_id"], name="uservectorindex_unique_owner")]
        verbose_name = "user vector index"
        verbose_name_plural = "user vector indexes"

    def __str__(self) -> str:
        return f"{self.index_name} ({self.status})"
