"""What operators can filter and order memories by, and the rule that a filter that is not understood is an error.

A filter the server ignores silently (a typo, an unknown value) answers the wrong question without saying so:
every query parameter must be a known filter (or pagination, or ordering) with a valid value, else 400.
"""

from datetime import UTC

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from memories.models import Memory
from memories.sectors import Sector

PAGINATION_PARAMETERS = {"limit", "offset"}


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time, compared in UTC: any offset Python reads is accepted (PostgreSQL refuses offsets
    beyond 15:59), and one that cannot be converted is a 400."""

    def filter(self, queryset, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except (OverflowError, ValueError):
                raise ValidationError({self.field_name: ["this date-time is out of range"]}) from None
        return super().filter(queryset, value)


class MemoryFilter(django_filters.FilterSet):
    space = django_filters.CharFilter(field_name="space__slug", help_text="Only memories of this space (its slug).")
    user_id = django_filters.CharFilter(help_text="Only this user's memories.")
    sector = django_filters.ChoiceFilter(
        choices=Sector.choices, help_text="Only memories whose primary sector is this."
    )
    superseded = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_superseded",
        help_text="true: only history (superseded memories); false: only current ones.",
    )
    q = django_filters.CharFilter(field_name="text", lookup_expr="icontains", help_text="Text contains (any case).")
    kind = django_filters.ChoiceFilter(choices=Memory.Kind.choices, help_text="Only memories of this kind.")
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    occurred_after = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Memory
        fields = [
            "space",
            "user_id",
            "sector",
            "kind",
            "superseded",
            "q",
            "created_after",
            "created_before",
            "occurred_after",
            "occurred_before",
        ]

    def filter_superseded(self, queryset, name: str, value: str):
        return queryset.filter(superseded_by__isnull=value != "true")


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, refusing query parameters it does not know and values with NUL characters (never valid in
    any filter, and refused by PostgreSQL) with a 400 that names them."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        known = set(filterset_class.base_filters) if filterset_class else set()
        known |= PAGINATION_PARAMETERS | {getattr(view, "ordering_param", OrderingFilter.ordering_param)}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ValidationError({unknown[0]: [f"unknown filter; use one of: {', '.join(sorted(known))}"]})
        filters = filterset_class.base_filters if filterset_class else {}
        for name, values in request.query_params.lists():
            if len(values) > 1:
                raise ValidationError({name: ["given more than once"]})
            if "\x00" in values[0]:
                raise ValidationError({name: ["must not contain NUL characters"]})
            if values[0] == "" and name in filters and not isinstance(filters[name], django_filters.CharFilter):
                raise ValidationError({name: ["must not be empty; leave the parameter out instead"]})
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """One ordering among the view's `ordering_fields`, ascending or descending (`-created_at`); anything else is a
    400, not silently ignored. The schema lists the choices."""

    def choices(self, view) -> list[str]:
        return [f"{sign}{field}" for field in view.ordering_fields for sign in ("", "-")]

    def get_ordering(self, request, queryset, view):
        requested = request.query_params.get(self.ordering_param)
        if requested is None:
            return self.get_default_ordering(view)
        if requested not in self.choices(view):
            raise ValidationError({self.ordering_param: [f"use one of: {', '.join(self.choices(view))}"]})
        return [requested, "-id"] if requested.lstrip("-") != "id" else [requested]

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Order by this field; a leading '-' for descending.",
                "schema": {"type": "string", "enum": self.choices(view)},
            }
        ]
