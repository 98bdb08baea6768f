"""Who a request is about: the user id an ElevenLabs call carries, under any of its names."""

USER_ID_FIELDS = ("user_id", "caller_id", "system__caller_id")


def user_id_from_tool_body(body: dict) -> object:
    """The first user id the body carries, as sent (validation happens in the serializer)."""
    for name in USER_ID_FIELDS:
        value = body.get(name)
        if value not in (None, ""):
            return value
    return None
