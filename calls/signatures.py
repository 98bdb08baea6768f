"""ElevenLabs webhook signatures: `ElevenLabs-Signature: t=<unix>,v0=<hex>`, where
hex = HMAC-SHA256(secret, f"{t}.{raw body}"). Verified on the raw bytes as they stream in."""

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field


class SignatureError(ValueError):
    """Why a webhook was refused; the message is the short reason the 401 answer gives."""


@dataclass
class SignatureHeader:
    timestamp: int
    signatures: list[str]


TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only ("²".isdigit() is True), and a size int() handles
SIGNATURE = re.compile(r"[0-9a-f]{64}")  # a SHA-256 hex digest; anything else can never match


def parse_signature_header(header: str | None) -> SignatureHeader:
    """`t=<unix>,v0=<hex>[,v0=<hex>...]`; SignatureError for anything else, whatever bytes it holds."""
    if not header:
        raise SignatureError("missing ElevenLabs-Signature header")
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        value = value.strip()
        if name == "t" and TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif name == "v0" and SIGNATURE.fullmatch(value.lower()):
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise SignatureError("malformed ElevenLabs-Signature header")
    return SignatureHeader(timestamp=timestamp, signatures=signatures)


@dataclass
class StreamingVerifier:
    """Feeds body chunks to one HMAC per accepted secret; `verify()` once the body is complete."""

    header: SignatureHeader
    secrets: list[str]
    tolerance_seconds: int
    _macs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        age = time.time() - self.header.timestamp
        if age > self.tolerance_seconds:
            raise SignatureError("signature timestamp is too old")
        if age < -self.tolerance_seconds:
            raise SignatureError("signature timestamp is in the future")
        prefix = f"{self.header.timestamp}.".encode()
        self._macs = [hmac.new(secret.encode(), prefix, hashlib.sha256) for secret in self.secrets if secret]

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def verify(self) -> int:
        """The position (among the non-empty secrets) of the secret that signed the body; SignatureError if none.
        Every secret is compared, whichever matches."""
        matched = None
        for position, mac in enumerate(self._macs):
            digest = mac.hexdigest()
            for offered in self.header.signatures:
                if hmac.compare_digest(digest, offered) and matched is None:
                    matched = position
        if matched is None:
            raise SignatureError("invalid signature")
        return matched


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value ElevenLabs would send for `body` (for tests, tools and the docs)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"
