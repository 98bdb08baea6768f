"""Input and output shapes of the memory endpoints (DRF serializers)."""

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from memories.models import Memory, MemoryLink
from memories.sectors import Sector, SectorError, parse_sectors


@extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=Sector.choices)))
class SectorsField(serializers.Field):
    """A list of sector names, or one comma-separated string (what an LLM tends to send)."""

    def to_internal_value(self, data):
        try:
            return parse_sectors(data)
        except SectorError as error:
            raise serializers.ValidationError(str(error)) from None

    def to_representation(self, value):
        return value


NOT_BLANK = RegexValidator(r"\S", message="must not be blank")


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings, and NUL characters.

    Unless blank is allowed, it needs a character that is not a space (the schema says so with a pattern).
    """

    default_error_messages = {"not_a_string": "must be a string"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.allow_blank:
            self.validators.append(NOT_BLANK)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A FloatField that refuses booleans (float(True) is 1.0) and strings (the schema says number)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(data)


class MemoryQuerySerializer(serializers.Serializer):
    """The body of the memory query tool (and of the operators' search endpoint)."""

    query = StrictCharField(max_length=settings.MEMORY_QUERY_MAX_CHARS, trim_whitespace=True)
    user_id = StrictCharField(max_length=128, trim_whitespace=True)
    sectors = SectorsField(required=False, default=list)
    limit = StrictIntegerField(required=False, default=5, min_value=1, max_value=settings.MEMORY_QUERY_MAX_LIMIT)


class OperatorSearchSerializer(MemoryQuerySerializer):
    """The operators' search: the tool's body, plus the space the user is in (its slug; default space if absent)."""

    space = StrictCharField(max_length=64, required=False)


class RememberSerializer(serializers.Serializer):
    """The body of the remember tool: a fact about the caller, to store now."""

    text = StrictCharField(max_length=settings.MEMORY_MAX_TEXT_CHARS, trim_whitespace=True)
    user_id = StrictCharField(max_length=128, trim_whitespace=True)
    sector = serializers.ChoiceField(choices=Sector.choices, required=False)


class MemoryLinkSerializer(serializers.ModelSerializer):
    class Meta:
        model = MemoryLink
        fields = ["from_memory", "to_memory", "weight", "reason"]


class MemorySerializer(serializers.ModelSerializer):
    sector = serializers.ChoiceField(choices=Sector.choices, required=False)
    extra_sectors = SectorsField(required=False)
    text = StrictCharField(max_length=settings.MEMORY_MAX_TEXT_CHARS)
    space = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, help_text="The memory space (slug); on create, the default space if absent."
    )
    user_id = StrictCharField(max_length=128)
    salience = StrictFloatField(required=False, min_value=0, max_value=1)
    source_conversation_id = StrictCharField(max_length=128, required=False, allow_blank=True)
    source_turns = serializers.ListField(child=StrictIntegerField(min_value=0), required=False)
    metadata = serializers.DictField(required=False)

    class Meta:
        model = Memory
        fields = [
            "id",
            "space",
            "user_id",
            "kind",
            "text",
            "sector",
            "extra_sectors",
            "salience",
            "embedding_model",
            "created_at",
            "occurred_at",
            "last_accessed_at",
            "access_count",
            "source_conversation_id",
            "source_turns",
            "superseded_by",
            "valid_until",
            "metadata",
        ]
        read_only_fields = [
            "id",
            "kind",
            "embedding_model",
            "created_at",
            "last_accessed_at",
            "access_count",
            "superseded_by",
            "valid_until",
        ]


class MemoryUpdateSerializer(serializers.Serializer):
    text = StrictCharField(max_length=settings.MEMORY_MAX_TEXT_CHARS, required=False)
    sector = serializers.ChoiceField(choices=Sector.choices, required=False)
    salience = StrictFloatField(required=False, min_value=0, max_value=1)
    metadata = serializers.DictField(required=False)


class SharedValidator:
    """Validation by one serializer instance shared by every request (its `run_validation`, which keeps no state
    on the instance): a serializer made per request deep-copies its declared fields first, about 0.2 ms of the
    memory tool's 1 ms in-process. Same fields, same rules, same messages as `Serializer(data=...).is_valid()`."""

    def __init__(self, serializer_class: type[serializers.Serializer]):
        self.serializer = serializer_class()

    def __call__(self, data: dict) -> tuple[dict | None, str]:
        """(the validated data, "") or (None, the first error as one line)."""
        try:
            return self.serializer.run_validation(data), ""
        except serializers.ValidationError as error:
            return None, first_error(error.detail)


def first_error(errors) -> str:
    """DRF's error tree as one short line: 'limit: Ensure this value is less than or equal to 50.'"""
    if isinstance(errors, dict):
        field, detail = next(iter(errors.items()))
        message = first_error(detail)
        return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(errors, list) and errors:
        return first_error(errors[0])
    return str(errors)
