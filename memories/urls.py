from django.urls import include, path
from rest_framework.routers import DefaultRouter

from memories import api, views

router = DefaultRouter(trailing_slash=False)
router.register("memories", api.MemoryViewSet, basename="memory")

urlpatterns = [
    path("tools/memory-query", views.memory_query_tool, name="tool-memory-query"),
    path(
        "webhooks/elevenlabs/conversation-initiation",
        views.conversation_initiation_webhook,
        name="elevenlabs-conversation-initiation",
    ),
    path("webhooks/elevenlabs/post-call", views.post_call_webhook, name="elevenlabs-post-call"),
    path("api/users/<str:user_id>/memories", api.forget_user_view, name="forget-user"),
    path("api/", include(router.urls)),
]
