"""What the call integration stores: who callers are, and the post-call events ElevenLabs sent.

Both tables predate this app (they were created by the memories app), so they keep their names.
"""

import hashlib
import secrets

from django.db import models
from django.utils import timezone

from memories.models import Space
from memories.owners import DEFAULT_SPACE_ID

SECRET_PREFIX = "msk_"


def secret_digest(secret: bytes | str) -> str:
    """What is stored of a space secret: its SHA-256 (the secrets are random, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).hexdigest()


class Agent(models.Model):
    """An ElevenLabs agent (its `agent_id`) and the memory space its callers are remembered in."""

    agent_id = models.CharField(max_length=128, unique=True, help_text="As ElevenLabs shows it: agent_…")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["space", "agent_id"]

    def __str__(self) -> str:
        return f"{self.name or self.agent_id} ({self.space})"


class SpaceSecret(models.Model):
    """A secret that opens one space's ElevenLabs endpoints (the tools, the initiation webhook, the Custom LLM).

    Only its SHA-256 is stored: the secret itself is shown once, when it is issued (the admin's "Issue a new
    secret"), and cannot be read back. Rotation without downtime: issue a new one, switch the agents to it, then
    revoke the old one. The default space also accepts the environment's secrets (ELEVENLABS_*_SECRETS).
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="secrets")
    label = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="The secret's first characters, to tell it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["space", "-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.prefix}… ({self.space}, {state})"

    @classmethod
    def issue(cls, space: Space, label: str = "") -> tuple["SpaceSecret", str]:
        """A new secret for `space`: the row, and the secret itself (to show once; it is not stored)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(space=space, label=label, prefix=secret[:12], digest=secret_digest(secret))
        return row, secret


class CallerIdentity(models.Model):
    """A caller's phone number (E.164) and the user id we know them by."""

    space = models.ForeignKey(Space, on_delete=models.PROTECT, default=DEFAULT_SPACE_ID, related_name="+")
    phone_number = models.CharField(max_length=32)
    user_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "memories_calleridentity"
        verbose_name_plural = "caller identities"
        constraints = [
            # One number is one user within a space; the same number in two spaces is two users.
            models.UniqueConstraint(fields=["space", "phone_number"], name="calleridentity_unique_space_phone")
        ]
        indexes = [models.Index(fields=["space", "user_id"], name="calleridentity_owner")]

    def __str__(self) -> str:
        return f"{self.phone_number} -> {self.user_id}"


class WebhookEvent(models.Model):
    """A post-call webhook from ElevenLabs, stored before we answer 200 and processed in the background.

    The states (calls.ingestion moves events between them, calls.tasks re-queues what is stranded):
    received --claim--> processing --> processed | ignored | retrying (transient failure) | failed (a bug, or
    the last attempt). A claim holds a lease: when the worker dies, the lease expires and the event is retried.
    Recorded and quarantined events are never processed: nothing to do, or a body that could not be parsed
    (kept raw for an operator).
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "received, waiting for the worker"
        PROCESSING = "processing", "processing"
        RETRYING = "retrying", "failed transiently, will retry"
        PROCESSED = "processed", "processed"
        RECORDED = "recorded", "recorded (nothing to process)"
        IGNORED = "ignored", "ignored (nothing usable)"
        FAILED = "failed", "failed after the last attempt"
        QUARANTINED = "quarantined", "quarantined (stored raw: the body could not be parsed)"

    WAITING = (Status.RECEIVED, Status.RETRYING)
    UNFINISHED = (Status.RECEIVED, Status.RETRYING, Status.PROCESSING)
    FINISHED = (Status.PROCESSED, Status.RECORDED, Status.IGNORED)

    event_type = models.CharField(max_length=64, db_index=True)
    conversation_id = models.CharField(max_length=128, blank=True, db_index=True)
    agent_id = models.CharField(max_length=128, blank=True)
    space = models.ForeignKey(
        Space,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The space of the event's agent; empty while the agent is registered to no space.",
    )
    user_id = models.CharField(max_length=128, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True, editable=False)
    event_timestamp = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    body_bytes = models.PositiveBigIntegerField(default=0)
    body_sha256 = models.CharField(max_length=64)
    payload = models.JSONField(null=True, blank=True, help_text="The event as received; never audio.")
    raw_body = models.BinaryField(null=True, blank=True, help_text="A quarantined body, exactly as received.")
    memories_created = models.PositiveIntegerField(default=0)
    memories_reinforced = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When a waiting event is due.")
    lease_expires_at = models.DateTimeField(null=True, blank=True, help_text="When a claim runs out.")
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    payload_erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention erased the payload (WEBHOOK_PAYLOAD_RETENTION_DAYS)."
    )

    class Meta:
        db_table = "memories_webhookevent"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookevent_due"),
            models.Index(fields=["space", "user_id"], name="webhookevent_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.conversation_id or self.body_sha256[:12]} ({self.status})"
