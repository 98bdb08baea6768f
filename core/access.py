"""Who may call an endpoint that has no user login: a shared secret in a header, written once as a policy.

ElevenLabs' initiation webhook and server tool carry a static secret the operator configured (no HMAC), and
Prometheus scrapes /metrics with a bearer token. Each endpoint names a `SecretPolicy`; `require_secret` applies
it. Secrets come from settings as lists, so a secret can be rotated without downtime (accept old and new, switch
the caller, drop the old).

Header values are compared as bytes, in constant time, against every accepted secret: the answer time does not
tell which secret was close, and a header that is not ASCII is simply wrong (never a `TypeError`, which
`hmac.compare_digest` raises for non-ASCII `str`).
"""

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

BEARER_PREFIX = b"bearer "


@dataclass(frozen=True)
class SecretPolicy:
    """A secret carried in `header_setting`'s header (if any) or as `Authorization: Bearer <secret>`.

    `secrets_setting` and `header_setting` name settings, read at request time (tests and rotations change
    them). With no secret configured the endpoint is closed: 503 with `not_configured`, or, when
    `allow_staff`, open to staff sessions only.
    """

    secrets_setting: str
    not_configured: str
    header_setting: str | None = None
    allow_staff: bool = False
    denied: str = "Missing or wrong secret."

    def secrets(self) -> list[str]:
        return [secret for secret in getattr(settings, self.secrets_setting) if secret]

    def header(self) -> str | None:
        return getattr(settings, self.header_setting) if self.header_setting else None

    def check(self, request: HttpRequest) -> JsonResponse | None:
        """None when the request may go on; otherwise the answer to send (401 or 503)."""
        if self.allow_staff and _is_staff(request):
            return None
        secrets = self.secrets()
        if not secrets:
            if self.allow_staff:
                return JsonResponse({"error": self.denied}, status=401)
            return JsonResponse({"error": self.not_configured}, status=503)
        offered = offered_secret(request, self.header())
        if offered and matches_any(offered, secrets):
            return None
        return JsonResponse({"error": self.denied}, status=401)


def require_secret(policy: SecretPolicy) -> Callable:
    """Decorate a function view: it runs only for requests that satisfy `policy`."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            refusal = policy.check(request)
            return refusal if refusal is not None else view(request, *args, **kwargs)

        return guarded

    return decorate


def offered_secret(request: HttpRequest, header: str | None) -> bytes | None:
    """The secret a request carries: in `header` when given and present, else as `Authorization: Bearer`."""
    offered = header_bytes(request, header) if header else None
    return offered or bearer_token(request)


def header_bytes(request: HttpRequest, name: str) -> bytes | None:
    """A header's value as ASCII bytes, stripped; None when absent, empty or not ASCII."""
    value = request.headers.get(name, "")
    try:
        raw = value.strip().encode("ascii")
    except UnicodeEncodeError:
        return None
    return raw or None


def bearer_token(request: HttpRequest) -> bytes | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), or None."""
    authorization = header_bytes(request, "Authorization")
    if not authorization or not authorization.lower().startswith(BEARER_PREFIX):
        return None
    return authorization[len(BEARER_PREFIX) :].strip() or None


def matches_any(offered: bytes, secrets: list[str]) -> bool:
    """Constant-time comparison against every secret (all of them are compared, whatever matches)."""
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(offered, secret.encode())
    return matched


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


METRICS = SecretPolicy(
    secrets_setting="METRICS_TOKENS",
    not_configured="",
    allow_staff=True,
    denied="metrics need a staff login or 'Authorization: Bearer <METRICS_TOKEN>'",
)
