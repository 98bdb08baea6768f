"""Payloads shaped exactly like ElevenLabs' (late 2026), signed the way ElevenLabs signs them."""

import json
import time

from calls.signatures import sign

AGENT_ID = "agent_7101k2abcdeffzq8pg3mq7w5v9c1"
TOOL_URL = "/tools/memory-query"
REMEMBER_URL = "/tools/memory-remember"
INITIATION_URL = "/webhooks/elevenlabs/conversation-initiation"
POST_CALL_URL = "/webhooks/elevenlabs/post-call"

# The secrets of the three integrations in tests and benchmarks (settings(): what the server must accept).
TOOL_SECRET = "tool_test_secret"
INITIATION_SECRET = "init_test_secret"
LLM_SECRET = "llm_test_key"
WEBHOOK_SECRET = "wsec_test_primary"
NEXT_WEBHOOK_SECRET = "wsec_test_next"  # a second accepted secret, as during a rotation


def secret_settings() -> dict[str, list[str]]:
    """The settings (or, comma-joined, the environment) that make a server accept the secrets above."""
    return {
        "ELEVENLABS_TOOL_SECRETS": [TOOL_SECRET],
        "ELEVENLABS_INITIATION_SECRETS": [INITIATION_SECRET],
        "ELEVENLABS_WEBHOOK_SECRETS": [WEBHOOK_SECRET, NEXT_WEBHOOK_SECRET],
        "ELEVENLABS_LLM_SECRETS": [LLM_SECRET],
    }


def turn(role: str, message: str | None, seconds: int, tool_calls=None, tool_results=None) -> dict:
    return {
        "role": role,
        "agent_metadata": {"agent_id": AGENT_ID, "workflow_node_id": None} if role == "agent" else None,
        "message": message,
        "multivoice_message": None,
        "tool_calls": tool_calls or [],
        "tool_results": tool_results or [],
        "feedback": None,
        "llm_override": None,
        "time_in_call_secs": seconds,
        "conversation_turn_metrics": None,
        "rag_retrieval_info": None,
        "llm_usage": None,
        "interrupted": False,
        "original_message": None,
        "source_medium": "audio",
    }


def transcription_payload(
    conversation_id: str = "conv_01jz8k2m3n4p5q6r7s8t9v0w1x",
    phone: str | None = "+16125550100",
    user_id: str | None = None,
    caller_lines: tuple[str, ...] = (
        "Hi, I was double charged on my March invoice and I'm pretty frustrated about it.",
        "I prefer email over phone calls for follow-ups.",
        "Okay, thanks.",
    ),
    summary: str | None = "The caller reported a duplicate charge on the March invoice; a refund was issued.",
    data_collection: dict | None = None,
) -> dict:
    transcript = [turn("agent", "Hi, this is Ava from Acme support. How can I help you today?", 0)]
    seconds = 3
    for index, line in enumerate(caller_lines):
        transcript.append(turn("user", line, seconds))
        if index == 0:
            request_id = "memory_query_4f2a"
            transcript.append(
                turn(
                    "agent",
                    None,
                    seconds + 2,
                    tool_calls=[
                        {
                            "type": "webhook",
                            "request_id": request_id,
                            "tool_name": "memory_query",
                            "params_as_json": json.dumps({"query": "billing history", "user_id": user_id or ""}),
                            "tool_has_been_called": True,
                            "tool_details": {"type": "webhook", "method": "POST", "url": "https://m.example/tools"},
                        }
                    ],
                )
            )
            transcript.append(
                turn(
                    "agent",
                    None,
                    seconds + 3,
                    tool_results=[
                        {
                            "type": "webhook",
                            "request_id": request_id,
                            "tool_name": "memory_query",
                            "result_value": '{"memories":[],"summary":"No memories of this caller match."}',
                            "is_error": False,
                            "tool_has_been_called": True,
                            "tool_latency_secs": 0.012,
                        }
                    ],
                )
            )
        transcript.append(turn("agent", "I understand. Let me take care of that for you.", seconds + 5))
        seconds += 10
    transcript.append(turn("user", None, seconds))  # a turn whose message is null
    dynamic_variables = {
        "system__caller_id": phone,
        "system__called_number": "+18005550199",
        "system__conversation_id": conversation_id,
        "system__agent_id": AGENT_ID,
        "system__call_duration_secs": seconds,
    }
    if user_id:
        dynamic_variables.update({"user_id": user_id, "memory_context": "", "caller_known": True})
    return {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": {
            "agent_id": AGENT_ID,
            "conversation_id": conversation_id,
            "status": "done",
            "user_id": user_id,
            "transcript": transcript,
            "metadata": {
                "start_time_unix_secs": 1795000000,
                "accepted_time_unix_secs": 1795000000,
                "call_duration_secs": seconds,
                "cost": 412,
                "deletion_settings": {"delete_transcript_and_pii": False, "delete_audio": False},
                "feedback": {"overall_score": None, "likes": 0, "dislikes": 0},
                "authorization_method": "authorization_header",
                "charging": {"dev_discount": False},
                "phone_call": None
                if phone is None
                else {
                    "direction": "inbound",
                    "phone_number_id": "phnum_01jz8",
                    "agent_number": "+18005550199",
                    "external_number": phone,
                    "type": "twilio",
                    "stream_sid": "MZ18ad3ab5a668481ce02b83e7395059f0",
                    "call_sid": "CA1234567890abcdef1234567890abcdef",
                },
                "termination_reason": "Call ended by remote party",
                "error": None,
                "main_language": "en",
            },
            "analysis": {
                "evaluation_criteria_results": {
                    "resolved": {"criteria_id": "resolved", "result": "success", "rationale": "Refund issued."}
                },
                "data_collection_results": data_collection
                if data_collection is not None
                else {
                    "preferred_contact_channel": {
                        "data_collection_id": "preferred_contact_channel",
                        "value": "email",
                        "json_schema": {"type": "string", "description": "How the caller wants to be contacted"},
                        "rationale": "The caller said they prefer email.",
                    },
                    "account_tier": {"data_collection_id": "account_tier", "value": None, "rationale": "Not said."},
                },
                "call_successful": "success",
                "transcript_summary": summary,
            },
            "conversation_initiation_client_data": {
                "conversation_config_override": {"agent": {"prompt": None, "first_message": None, "language": None}},
                "custom_llm_extra_body": {},
                "dynamic_variables": dynamic_variables,
            },
        },
    }


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def signed_headers(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict:
    return {"ElevenLabs-Signature": sign(body, secret, timestamp)}
