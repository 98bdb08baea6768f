"""A local HTTP server that speaks the OpenAI embeddings and chat protocols, for driving the real `openai` client.

It records every request, answers `POST /v1/embeddings` with deterministic vectors (a hash of the text, so
equal texts get equal vectors), honours `dimensions` and `encoding_format`, and can be told to be slow, to
fail with a status code a number of times, to answer with the wrong number of dimensions, or to answer a
broken 200 (`broken_next`: "nan", "zeros", "html", "empty", "missing_one"), as providers do on bad days.

Chat completions with `"stream": true` are answered as OpenAI streams them: Server-Sent Events, one chunk of
`stream_words` every `stream_interval` seconds (a fixed pace, for time-to-first-token measurements), an optional
tool call, then `data: [DONE]`. A client that hangs up mid-stream is counted in `streams_abandoned`.
"""

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def fake_vector(text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    return vector / np.linalg.norm(vector)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a burst of clients (32 streams at once) must not be reset


class FakeOpenAIServer:
    def __init__(self, dimensions: int = 1536):
        self.dimensions = dimensions
        self.delay = 0.0
        self.fail_next: list[int] = []  # status codes to answer with, one per request, before succeeding
        self.wrong_dimensions: int | None = None
        self.broken_next: list[str] = []  # broken 200 answers, one per embeddings request, before good ones
        self.ignore_encoding_format = False
        self.requests: list[dict] = []
        self.chat_responses: list[dict] = []
        self.stream_words: list[str] = ["Hello", " there", ", how", " can", " I", " help", "?"]
        self.stream_interval = 0.0
        self.stream_tool_call: dict | None = None  # {"name": ..., "arguments": "..."} streamed after the words
        self.streams_abandoned = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[dict]:
        return [request for request in self.requests if request["path"].endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[dict]:
        return [request for request in self.requests if request["path"].endswith("/embeddings")]

    def start(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer_embeddings(self, body: dict, broken: str | None = None) -> tuple[int, dict | str]:
        if broken == "html":
            return 200, "<html><body>Service temporarily unavailable</body></html>"
        if broken == "empty":
            return 200, {}
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = self.wrong_dimensions or body.get("dimensions") or self.dimensions
        as_base64 = body.get("encoding_format") == "base64" and not self.ignore_encoding_format
        data = []
        for index, text in enumerate(inputs[:-1] if broken == "missing_one" else inputs):
            vector = fake_vector(text, dimensions)
            if broken == "nan":
                vector[0] = np.nan
            elif broken == "zeros":
                vector[:] = 0.0
            embedding = base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(text.split()) for text in inputs)
        return 200, {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _answer_chat(self, body: dict) -> tuple[int, dict]:
        content = self.chat_responses.pop(0) if self.chat_responses else {"facts": []}
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(content), "refusal": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def stream_chunks(self, body: dict) -> list[dict]:
        """The chunks of a streamed answer, as OpenAI sends them (role first, then deltas, then the finish)."""
        base = {"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": word}) for word in self.stream_words]
        if self.stream_tool_call:
            call = {"index": 0, "id": "call_fake", "type": "function", "function": self.stream_tool_call}
            chunks.append(chunk({"tool_calls": [call]}))
        chunks.append(chunk({}, "tool_calls" if self.stream_tool_call else "stop"))
        return chunks

    def response_events(self, body: dict) -> list[dict]:
        """The events of a streamed Responses API answer, as OpenAI sends them (created, text deltas, completed)."""
        response = {"id": "resp_fake", "object": "response", "model": body["model"], "status": "in_progress"}
        events = [{"type": "response.created", "response": response}]
        events += [
            {
                "type": "response.output_text.delta",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "delta": word,
            }
            for word in self.stream_words
        ]
        events.append({"type": "response.completed", "response": {**response, "status": "completed"}})
        return [{**event, "sequence_number": number} for number, event in enumerate(events)]

    def _answer_response(self, body: dict) -> tuple[int, dict]:
        text = "".join(self.stream_words)
        message = {
            "type": "message",
            "id": "msg_fake",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        return 200, {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "model": body["model"],
            "status": "completed",
            "output": [message],
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                    embeddings = self.path.endswith("/embeddings")
                    broken = fake.broken_next.pop(0) if embeddings and fake.broken_next and not failure else None
                if fake.delay:
                    time.sleep(fake.delay)
                if not failure and self.path.endswith("/chat/completions") and body.get("stream"):
                    self.stream(body)
                    return
                if not failure and self.path.endswith("/responses") and body.get("stream"):
                    self.stream_events(body)
                    return
                if failure:
                    status, payload = failure, {"error": {"message": "fake failure", "type": "server_error"}}
                elif embeddings:
                    status, payload = fake._answer_embeddings(body, broken)
                elif self.path.endswith("/chat/completions"):
                    status, payload = fake._answer_chat(body)
                elif self.path.endswith("/responses"):
                    status, payload = fake._answer_response(body)
                else:
                    status, payload = 404, {"error": {"message": "not found"}}
                is_json = not isinstance(payload, str)
                encoded = json.dumps(payload).encode() if is_json else payload.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if is_json else "text/html")
                    self.send_header("Content-Length", str(len(encoded)))
                    self.end_headers()
                    self.wfile.write(encoded)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a slow-provider test's timeout): nothing to answer

            def stream_events(self, body: dict) -> None:
                """The Responses API's stream: typed events, no closing line."""
                events = fake.response_events(body)
                self.send_events(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)

            def stream(self, body: dict) -> None:
                """A chat completion's stream: `data:` chunks, then `data: [DONE]`."""
                chunks = fake.stream_chunks(body)
                self.send_events((f"data: {json.dumps(chunk)}\n\n" for chunk in chunks), closing=b"data: [DONE]\n\n")

            def send_events(self, events, closing: bytes = b"") -> None:
                """Server-Sent Events at the fake's pace (a pause after each), then `closing`; a client that hangs
                up is counted as an abandoned stream."""
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for event in events:
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                        if fake.stream_interval:
                            time.sleep(fake.stream_interval)
                    if closing:
                        self.wfile.write(closing)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    with fake._lock:
                        fake.streams_abandoned += 1

        return Handler
