"""The operators' memory API (DRF): token or session auth, staff only."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from embeddings.errors import EmbeddingInputError, EmbeddingProviderError
from memories.answers import server_timing, tool_answer
from memories.models import Memory, MemoryLink
from memories.query import query_memories
from memories.serializers import (
    MemoryLinkSerializer,
    MemoryQuerySerializer,
    MemorySerializer,
    MemoryUpdateSerializer,
    first_error,
)
from memories.services import (
    MemoryConflict,
    MemoryInputError,
    NewMemory,
    create_memory,
    delete_memory,
    forget_user,
    update_memory_text,
)


class EmbeddingUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The embedding provider is unavailable; try again shortly."


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The change conflicts with another memory."


def api_exception_handler(exc, context):
    """DRF errors as {"error": "<one short line>", "detail": <the full detail>}."""
    if isinstance(exc, MemoryConflict):
        exc = Conflict(str(exc))
    elif isinstance(exc, EmbeddingInputError | MemoryInputError):
        exc = ValidationError({"text": [str(exc)]})
    elif isinstance(exc, EmbeddingProviderError):
        exc = EmbeddingUnavailable()
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": first_error(response.data), "detail": response.data}
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


@extend_schema(
    parameters=[
        OpenApiParameter("user_id", str, description="Only this user's memories."),
        OpenApiParameter("sector", str, description="Only this primary sector."),
        OpenApiParameter("superseded", bool, description="true: only superseded history; false: only current."),
        OpenApiParameter("q", str, description="Text contains (case-insensitive)."),
    ]
)
class MemoryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MemorySerializer
    queryset = Memory.objects.defer("embedding")

    def get_queryset(self):
        queryset = super().get_queryset()
        params = self.request.query_params
        for name, value in params.items():
            if "\x00" in value:
                raise ValidationError({name: ["must not contain NUL characters"]})
        if params.get("user_id"):
            queryset = queryset.filter(user_id=params["user_id"])
        if params.get("sector"):
            queryset = queryset.filter(sector=params["sector"])
        if params.get("superseded") in ("true", "false"):
            queryset = queryset.filter(superseded_by__isnull=params["superseded"] == "false")
        if params.get("q"):
            queryset = queryset.filter(Q(text__icontains=params["q"]))
        return queryset

    @extend_schema(
        description="Store a memory (embedded through the cache). 201 when new; 200 when it repeats "
        "an existing memory of the user, which is reinforced and returned instead."
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        stored = create_memory(
            data["user_id"],
            NewMemory(
                text=data["text"],
                sector=data.get("sector"),
                extra_sectors=data.get("extra_sectors", []),
                salience=data.get("salience", 0.5),
                source_conversation_id=data.get("source_conversation_id", ""),
                source_turns=data.get("source_turns", []),
                metadata=data.get("metadata", {}),
            ),
        )
        return Response(
            MemorySerializer(stored.memory).data,
            status=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=MemoryUpdateSerializer,
        responses=MemorySerializer,
        description="Change a memory; new text is re-embedded.",
    )
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        memory = self.get_object()
        serializer = MemoryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        for name in ("sector", "salience", "metadata"):
            if name in data:
                setattr(memory, name, data[name])
        if "text" in data:
            update_memory_text(memory, data["text"])
        else:
            memory.save()
        return Response(MemorySerializer(memory).data)

    def perform_destroy(self, instance: Memory) -> None:
        delete_memory(instance)

    @extend_schema(responses=MemoryLinkSerializer(many=True))
    @action(detail=True, methods=["get"])
    def links(self, request: Request, pk=None) -> Response:
        memory = self.get_object()
        links = MemoryLink.objects.filter(Q(from_memory=memory) | Q(to_memory=memory), user_id=memory.user_id)
        return Response(MemoryLinkSerializer(links, many=True).data)

    @extend_schema(
        request=MemoryQuerySerializer,
        responses=SEARCH_ANSWER,
        description="The same search as the ElevenLabs memory tool, for operators.",
    )
    @action(detail=False, methods=["post"])
    def search(self, request: Request) -> Response:
        serializer = MemoryQuerySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = query_memories(data["user_id"], data["query"], data["sectors"] or None, data["limit"])
        return Response(tool_answer(result), headers={"Server-Timing": server_timing(result.timings_ms)})


@extend_schema(
    methods=["DELETE"],
    responses=inline_serializer(
        "ForgetAnswer", {"user_id": serializers.CharField(), "deleted": serializers.DictField()}
    ),
    description="Forget a user entirely: memories, links and every other record holding their text, in one "
    "transaction. Answers the counts deleted, by kind.",
)
@api_view(["DELETE"])
def forget_user_view(request: Request, user_id: str) -> Response:
    if "\x00" in user_id or len(user_id) > 128:
        raise ValidationError({"user_id": ["not a user id: at most 128 characters, no NUL"]})
    return Response({"user_id": user_id, "deleted": forget_user(user_id)})
