from django.urls import path

from calls import custom_llm, views

urlpatterns = [
    path("tools/memory-query", views.memory_query_tool, name="tool-memory-query"),
    path("tools/memory-remember", views.memory_remember_tool, name="tool-memory-remember"),
    path("v1/chat/completions", custom_llm.chat_completions, name="custom-llm-chat-completions"),
    path("v1/responses", custom_llm.responses, name="custom-llm-responses"),
    path(
        "webhooks/elevenlabs/conversation-initiation",
        views.conversation_initiation_webhook,
        name="elevenlabs-conversation-initiation",
    ),
    path("webhooks/elevenlabs/post-call", views.post_call_webhook, name="elevenlabs-post-call"),
]
