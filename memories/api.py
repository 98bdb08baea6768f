"""The operators' memory API (DRF): token or session auth, staff only, throttled, documented in /api/schema/.

Every error is JSON `{"detail": "<one line a person can read>"}`, with `"errors": {field: [messages]}` added when
a request did not validate; filters and orderings that are not understood are refused, never ignored.
"""

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from memories.answers import server_timing, tool_answer
from memories.filters import MemoryFilter, StrictFilterBackend, StrictOrderingFilter
from memories.forget import EXPORTERS
from memories.models import Memory, MemoryLink, Space
from memories.owners import Owner, OwnerError
from memories.query import query_memories
from memories.serializers import (
    MemoryLinkSerializer,
    MemorySerializer,
    MemoryUpdateSerializer,
    OperatorSearchSerializer,
    first_error,
)
from memories.services import (
    MemoryConflict,
    MemoryInputError,
    NewMemory,
    create_memory,
    delete_memory,
    forget_user,
    update_memory_fields,
)
from memories.spaces import UnknownSpace, restrict_to_visible, visible_space

MAX_USER_ID_CHARS = 128


class EmbeddingUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The embedding provider is unavailable; try again shortly."


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The change conflicts with another memory."


def api_exception_handler(exc, context):
    """DRF errors as {"detail": "<one short line>"}, plus "errors" (the field tree) for validation errors."""
    if isinstance(exc, MemoryConflict):
        exc = Conflict(str(exc))
    elif isinstance(exc, OwnerError):
        exc = ValidationError({"user_id": [str(exc)]})
    elif isinstance(exc, EmbeddingInputError | MemoryInputError):
        exc = ValidationError({"text": [str(exc)]})
    elif isinstance(exc, EmbeddingProviderError):
        exc = EmbeddingUnavailable()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": first_error(errors), "errors": errors}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"detail": str(detail) if detail is not None else first_error(response.data)}
    return response


SEARCH_ANSWER = inline_serializer(
    "MemorySearchAnswer",
    {
        "memories": inline_serializer(
            "MemoryHit",
            {
                "id": serializers.IntegerField(),
                "text": serializers.CharField(),
                "sector": serializers.CharField(),
                "score": serializers.FloatField(),
                "when": serializers.CharField(),
            },
            many=True,
        ),
        "summary": serializers.CharField(),
    },
)


class OperatorAPI:
    """What every operator endpoint shares: strict filters and ordering, a throttle scope, and memory spaces: a
    request sees only the spaces its user may see (memories.spaces), and names one with `space` (a slug; the
    default space when absent)."""

    filter_backends = [StrictFilterBackend, StrictOrderingFilter]
    throttle_scope = "operator_api"

    def named_space(self, slug: object) -> Space:
        if slug is not None and not isinstance(slug, str):
            raise ValidationError({"space": ["must be a memory space's slug"]})
        try:
            return visible_space(self.request.user, slug)
        except UnknownSpace as problem:
            raise NotFound(str(problem).capitalize() + ".") from None

    def owner_in_url(self) -> Owner:
        """The user of /api/users/<user_id>/… in the space of `?space=`."""
        user_id = checked_user_id(self.kwargs["user_id"])
        return Owner(self.named_space(self.request.query_params.get("space")).pk, user_id)


class MemoryViewSet(
    OperatorAPI,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MemorySerializer
    filterset_class = MemoryFilter
    ordering_fields = ["created_at", "occurred_at", "salience", "access_count", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return restrict_to_visible(Memory.objects.defer("embedding").select_related("space"), self.request.user)

    @extend_schema(
        description="Store a memory (embedded through the cache). 201 when new; 200 when it repeats "
        "an existing memory of the user, which is reinforced and returned instead.",
        responses={201: MemorySerializer, 200: MemorySerializer},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        stored = create_memory(
            Owner(self.named_space(request.data.get("space")).pk, data["user_id"]),
            NewMemory(
                text=data["text"],
                sector=data.get("sector"),
                extra_sectors=data.get("extra_sectors", []),
                salience=data.get("salience", 0.5),
                source_conversation_id=data.get("source_conversation_id", ""),
                source_turns=data.get("source_turns", []),
                metadata=data.get("metadata", {}),
                occurred_at=data.get("occurred_at"),
            ),
        )
        return Response(
            MemorySerializer(stored.memory).data,
            status=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=MemoryUpdateSerializer,
        responses=MemorySerializer,
        description="Change a memory; new text is re-embedded. 409 when the new text repeats another current "
        "memory of the same user.",
    )
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        memory = self.get_object()
        serializer = MemoryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update_memory_fields(memory, **serializer.validated_data)
        return Response(MemorySerializer(memory).data)

    def perform_destroy(self, instance: Memory) -> None:
        delete_memory(instance)

    @extend_schema(
        responses=MemoryLinkSerializer(many=True), description="The memory's links, both directions, same user only."
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def links(self, request: Request, pk=None) -> Response:
        memory = self.get_object()
        links = MemoryLink.objects.filter(
            Q(from_memory=memory) | Q(to_memory=memory), space_id=memory.space_id, user_id=memory.user_id
        ).order_by("-weight", "id")
        page = self.paginate_queryset(links)
        return self.get_paginated_response(MemoryLinkSerializer(page, many=True).data)

    @extend_schema(
        request=OperatorSearchSerializer,
        responses=SEARCH_ANSWER,
        description="The same search as the ElevenLabs memory tool, for operators; it does not reinforce what it "
        "finds (an operator looking is not the caller remembering).",
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def search(self, request: Request) -> Response:
        serializer = OperatorSearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = Owner(self.named_space(data.get("space")).pk, data["user_id"])
        result = query_memories(owner, data["query"], data["sectors"] or None, data["limit"], reinforce_results=False)
        return Response(tool_answer(result), headers={"Server-Timing": server_timing(result.timings_ms)})


FORGET_ANSWER = inline_serializer(
    "ForgetAnswer",
    {
        "user_id": serializers.CharField(),
        "space": serializers.CharField(),
        "deleted": serializers.DictField(child=serializers.IntegerField()),
    },
)


class UserMemoriesView(OperatorAPI, mixins.ListModelMixin, generics.GenericAPIView):
    """One user's memories in one space (`?space=`, the default space when absent): read them (the same filters
    and ordering as /api/memories), or forget the user."""

    serializer_class = MemorySerializer
    filterset_class = MemoryFilter
    ordering_fields = MemoryViewSet.ordering_fields
    ordering = MemoryViewSet.ordering

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user id
            return Memory.objects.none()
        return Memory.objects.defer("embedding").select_related("space").for_user(self.owner_in_url())

    @extend_schema(description="The user's memories, newest first.")
    def get(self, request: Request, user_id: str) -> Response:
        return self.list(request)

    @extend_schema(
        responses={200: FORGET_ANSWER},
        description="Forget a user entirely: memories, links and every other record holding their text, in one "
        "transaction. Answers the counts deleted, by kind.",
    )
    def delete(self, request: Request, user_id: str) -> Response:
        owner = self.owner_in_url()
        space = Space.objects.get(pk=owner.space_id)
        return Response({"user_id": owner.user_id, "space": space.slug, "deleted": forget_user(owner)})


EXPORT_ANSWER = inline_serializer(
    "UserExport",
    {
        "user_id": serializers.CharField(),
        "space": serializers.CharField(),
        "exported_at": serializers.DateTimeField(),
        "memories": MemorySerializer(many=True),
        "links": MemoryLinkSerializer(many=True),
        "caller_identities": serializers.ListField(child=serializers.DictField()),
        "webhook_events": serializers.ListField(child=serializers.DictField()),
    },
)


class UserExportView(OperatorAPI, generics.GenericAPIView):
    """Everything the platform holds about one user, as one JSON document (a data subject access request)."""

    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        responses={200: EXPORT_ANSWER},
        description="Everything held about the user: every memory (history included) with its provenance "
        "(conversation, turns, when it was said), the links between them, the phone numbers they called from, "
        "and their post-call events as metadata (payloads are not exported: the memories made from them are). "
        "An unknown user id answers an empty export.",
    )
    def get(self, request: Request, user_id: str) -> Response:
        owner = self.owner_in_url()
        memories = (
            Memory.objects.defer("embedding").select_related("space").for_user(owner).order_by("occurred_at", "id")
        )
        links = MemoryLink.objects.filter(space_id=owner.space_id, user_id=owner.user_id).order_by("id")
        document = {
            "user_id": owner.user_id,
            "space": Space.objects.get(pk=owner.space_id).slug,
            "exported_at": timezone.now(),
            "memories": MemorySerializer(memories, many=True).data,
            "links": MemoryLinkSerializer(links, many=True).data,
            **{name: exporter(owner) for name, exporter in EXPORTERS.items()},
        }
        filename = "".join(
            character if character.isalnum() or character in "-_" else "_" for character in owner.user_id
        )
        return Response(document, headers={"Content-Disposition": f'attachment; filename="export-{filename}.json"'})


def checked_user_id(value: str) -> str:
    """A user id from a URL; 400 for what no user id can be (too long, NUL, not UTF-8)."""
    if "\x00" in value or len(value) > MAX_USER_ID_CHARS or not _encodable(value):
        raise ValidationError({"user_id": [f"not a user id: at most {MAX_USER_ID_CHARS} characters of text"]})
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
