"""limit/offset pagination that refuses what it cannot read (DRF's silently falls back to its defaults)."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500
    max_offset = 10_000_000

    def get_limit(self, request):
        if self.limit_query_param in request.query_params:
            limit = self._number(request, self.limit_query_param, minimum=1)
            if limit > self.max_limit:
                raise ValidationError({self.limit_query_param: [f"at most {self.max_limit}"]})
            return limit
        return self.default_limit

    def get_offset(self, request):
        if self.offset_query_param in request.query_params:
            offset = self._number(request, self.offset_query_param, minimum=0)
            if offset > self.max_offset:
                raise ValidationError({self.offset_query_param: [f"at most {self.max_offset}"]})
            return offset
        return 0

    @staticmethod
    def _number(request, name: str, minimum: int) -> int:
        raw = request.query_params[name]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or int(raw) < minimum:
            raise ValidationError({name: [f"must be a whole number from {minimum}"]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            minimum = 1 if parameter["name"] == self.limit_query_param else 0
            parameter["schema"] = {**parameter["schema"], "minimum": minimum}
            parameter["schema"]["maximum"] = (
                self.max_limit if parameter["name"] == self.limit_query_param else self.max_offset
            )
        return parameters
