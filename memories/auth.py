"""Secret-header authentication for the ElevenLabs endpoints (no HMAC on the tool and initiation calls)."""

import hmac

from django.http import HttpRequest


def secret_matches(request: HttpRequest, header: str, secrets: list[str]) -> bool:
    """True when `header` carries one of `secrets` (several are accepted, for rotation).

    Also accepts `Authorization: Bearer <secret>`. Constant-time comparison against every secret, so the
    answer time does not tell which secret was close.
    """
    offered = request.headers.get(header, "")
    if not offered:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            offered = authorization[len("Bearer ") :]
    offered = offered.strip()
    matched = False
    for secret in secrets:
        matched |= bool(secret) and hmac.compare_digest(offered.encode(), secret.encode())
    return matched and bool(offered)
