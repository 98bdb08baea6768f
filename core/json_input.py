"""JSON from outside, parsed totally: whatever the bytes, the answer is a clean value or JSONInputError.

Python's parser accepts what the database refuses, and fails in ways a view does not expect:
- NUL characters (PostgreSQL text and jsonb refuse them) and lone UTF-16 surrogates (not encodable as UTF-8)
  are valid JSON string escapes: they are removed (NUL) or replaced by U+FFFD (surrogates), in keys and values;
- NaN and Infinity are accepted by Python, not by jsonb: they become null;
- deep nesting raises RecursionError (about 1,000 levels), and anything deeper than JSON_MAX_DEPTH is refused
  here: ElevenLabs' payloads are under ten levels deep.
"""

import json
import re

from django.conf import settings

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONInputError(ValueError):
    """Why a body is not usable JSON, in a few words for a 400 answer."""


def load_json(raw: bytes | str) -> object:
    """The parsed, cleaned value of `raw`; JSONInputError when it is not JSON or nested too deeply."""
    try:
        value = json.loads(raw, parse_constant=lambda constant: None)
    except RecursionError:
        raise JSONInputError("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise JSONInputError("the body is not JSON") from None
    return clean_json(value, settings.JSON_MAX_DEPTH)


def clean_json(value: object, max_depth: int) -> object:
    """`value` with every string cleaned (clean_text); JSONInputError past `max_depth` levels of nesting."""
    if max_depth < 0:
        raise JSONInputError("the JSON is nested too deeply")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): clean_json(item, max_depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item, max_depth - 1) for item in value]
    return value


def clean_text(text: str) -> str:
    """Without NUL characters, lone surrogates replaced by U+FFFD (fast when there is nothing to clean)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = LONE_SURROGATE.sub("\ufffd", text)
    return text
