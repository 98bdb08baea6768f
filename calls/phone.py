"""Phone numbers as ElevenLabs sends them ("+16125550100", "16125550100", "(612) 555-0100") to E.164."""

import phonenumbers
from django.conf import settings


def normalize_phone_number(raw: object) -> str | None:
    """E.164 ("+16125550100"), or None when `raw` is not a plausible phone number (SIP URIs, ids, junk)."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if text.lower().startswith(("sip:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0]
    if not text or not any(char.isdigit() for char in text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    region = None if text.startswith("+") else settings.PHONE_DEFAULT_REGION
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        if not text.startswith("+"):
            return normalize_phone_number("+" + text)  # "16125550100": a full number without the plus
        return None
    if not phonenumbers.is_possible_number(number):
        if not text.startswith("+"):
            return normalize_phone_number("+" + "".join(char for char in text if char.isdigit()))
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
