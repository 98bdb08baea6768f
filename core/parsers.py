"""DRF's JSON parser, through core.json_input: the operator API gets the same clean, bounded JSON as the
ElevenLabs endpoints (no NUL, no lone surrogate, no NaN, no nesting past JSON_MAX_DEPTH)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.json_input import JSONInputError, load_json


class CleanJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return load_json(stream.read())
        except JSONInputError as error:
            raise ParseError(f"JSON parse error: {error}") from None
