"""Which memory space an ElevenLabs request is served in, and whether it may be.

A request's secret names its space: the environment's secrets (ELEVENLABS_TOOL_SECRETS and the rest, the
endpoint's `SecretPolicy`) open the default space; a space's own secrets (SpaceSecret, stored hashed) open that
space. When the request also names its agent (the initiation's `agent_id`, a tool's `system__agent_id`, the
Custom LLM's `memory_agent_id` line), the agent must belong to that space: an agent registered to another space
is refused, and so is an agent registered to none, unless the space is the default one and it accepts
unregistered agents (how a deployment without registered agents keeps working).

Post-call webhooks are signed by ElevenLabs with the workspace's HMAC secret, which cannot be stored hashed
(verifying needs it), so it stays in the environment. Signed by one of ELEVENLABS_WEBHOOK_SECRETS (the
deployment's own workspace), an event goes to its agent's space (`space_of_agent`). Signed by a secret of
ELEVENLABS_WEBHOOK_SPACE_SECRETS (another workspace, bound to one space), it belongs to that space: an event
naming an agent registered to another space is kept as failed, never processed (another workspace cannot
write into a space it is not bound to).

Lookups are remembered per process for SPACE_LOOKUP_CACHE_SECONDS: a revoked secret or a moved agent takes
effect within that time.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from calls.models import Agent, SpaceSecret, secret_digest
from core.access import SecretPolicy, matches_any, offered_secret
from memories.models import Space
from memories.owners import DEFAULT_SPACE_ID

UNKNOWN_AGENT = "Unknown agent: register its agent_id in a memory space first."
OTHER_SPACE = "This agent belongs to another memory space than this secret."


@dataclass(frozen=True)
class Admission:
    """A request's space, or why it is refused (status and one sentence)."""

    space_id: int | None
    status: int = 200
    message: str = ""

    @property
    def refused(self) -> bool:
        return self.space_id is None


class _Remembered:
    """A small per-process map whose entries expire after SPACE_LOOKUP_CACHE_SECONDS."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[object, float]] = {}

    def get(self, key: str, load) -> object:
        now = time.monotonic()
        found = self._values.get(key)
        if found is not None and found[1] > now:
            return found[0]
        value = load()
        if len(self._values) >= 10_000:
            self._values.clear()
        self._values[key] = (value, now + settings.SPACE_LOOKUP_CACHE_SECONDS)
        return value

    def clear(self) -> None:
        self._values.clear()


_secret_spaces = _Remembered()
_agent_spaces = _Remembered()
_default_open = _Remembered()


def forget_lookups() -> None:
    """Drop what this process remembers (the admin calls it after a change, tests between cases)."""
    for remembered in (_secret_spaces, _agent_spaces, _default_open):
        remembered.clear()


def space_of_secret(offered: bytes) -> int | None:
    digest = secret_digest(offered)
    return _secret_spaces.get(
        digest,
        lambda: (
            SpaceSecret.objects.filter(digest=digest, revoked_at__isnull=True)
            .values_list("space_id", flat=True)
            .first()
        ),
    )


def registered_space(agent_id: str) -> int | None:
    """The space `agent_id` is registered to, or None."""
    return _agent_spaces.get(
        agent_id, lambda: Agent.objects.filter(agent_id=agent_id).values_list("space_id", flat=True).first()
    )


def default_space_open() -> bool:
    """Whether the default space serves agents registered to no space."""
    return bool(
        _default_open.get(
            "default",
            lambda: Space.objects.filter(pk=DEFAULT_SPACE_ID, accepts_unregistered_agents=True).exists(),
        )
    )


def space_of_agent(agent_id: str) -> int | None:
    """The space a (signed) post-call event of `agent_id` belongs to: its registered space, else the default
    space when that accepts unregistered agents; None when the agent has no space."""
    if agent_id:
        registered = registered_space(agent_id)
        if registered is not None:
            return registered
    return DEFAULT_SPACE_ID if default_space_open() else None


def space_secret_entry(entry: str) -> tuple[str, str] | None:
    """(space slug, secret) of one ELEVENLABS_WEBHOOK_SPACE_SECRETS entry ("slug:secret"); None when it is not
    one (calls.checks refuses to start with such an entry)."""
    slug, separator, secret = entry.partition(":")
    return (slug.strip(), secret.strip()) if separator and slug.strip() and secret.strip() else None


def webhook_space_secrets() -> list[tuple[str, str]]:
    """(space slug, secret) of every usable ELEVENLABS_WEBHOOK_SPACE_SECRETS entry."""
    entries = (space_secret_entry(entry) for entry in settings.ELEVENLABS_WEBHOOK_SPACE_SECRETS)
    return [entry for entry in entries if entry is not None]


def event_space_at_arrival(agent_id: str, signed_for_space: str) -> tuple[int | None, str]:
    """(the space of a post-call event, why it must not be processed — empty when it may)."""
    if not signed_for_space:
        return space_of_agent(agent_id), ""
    bound = Space.objects.filter(slug=signed_for_space).values_list("pk", flat=True).first()
    if bound is None:
        return None, f"signed with the webhook secret of space {signed_for_space!r}, which does not exist"
    registered = registered_space(agent_id) if agent_id else None
    if registered is not None and registered != bound:
        return bound, (
            f"signed with the webhook secret of space {signed_for_space!r}, but agent {agent_id} belongs to "
            "another space: not processed"
        )
    return bound, ""


def admit_by_environment(request: HttpRequest, policy: SecretPolicy, agent_id: str = "") -> Admission | None:
    """The admission when it needs no database (an environment secret, no agent named: the default space); None
    when `admit` has to look. For async views, which would otherwise hop to a thread for every turn."""
    offered = offered_secret(request, policy.header())
    environment = policy.secrets()
    if not agent_id and offered and environment and matches_any(offered, environment):
        return Admission(DEFAULT_SPACE_ID)
    return None


def admit(request: HttpRequest, policy: SecretPolicy, agent_id: str = "") -> Admission:
    """The space `request` is served in, by its secret and its agent (see the module's docstring)."""
    offered = offered_secret(request, policy.header())
    environment = policy.secrets()
    space_id = None
    if offered and environment and matches_any(offered, environment):
        space_id = DEFAULT_SPACE_ID
    elif offered:
        space_id = space_of_secret(offered)
    if space_id is None:
        if not environment and not SpaceSecret.objects.filter(revoked_at__isnull=True).exists():
            return Admission(None, 503, policy.not_configured)
        return Admission(None, 401, policy.denied)
    if agent_id:
        registered = registered_space(agent_id)
        if registered is None and not (space_id == DEFAULT_SPACE_ID and default_space_open()):
            return Admission(None, 403, UNKNOWN_AGENT)
        if registered is not None and registered != space_id:
            return Admission(None, 403, OTHER_SPACE)
    return Admission(space_id)
