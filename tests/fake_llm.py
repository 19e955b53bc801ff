"""A scripted OpenAI-compatible server on 127.0.0.1 for the LLM-mode tests.

It speaks the real wire protocol over real HTTP: POST /v1/chat/completions answers a
`chat.completion` JSON object, or with "stream": true an SSE stream of `chat.completion.chunk`
objects ending in `data: [DONE]` (chunked transfer encoding, as vLLM and Ollama send it);
GET /v1/models lists the model. Each chat request takes the next `Reply` from `script`
(first in, first out); every request body is kept in `requests` for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake"


@dataclass
class Reply:
    """One scripted reply to a chat request.

    kind: "text" (a normal completion), "garbage" (200 with a non-JSON body), "bad_json" (a
    stream with an invalid JSON line), "cut" (a stream that stops without finish_reason and
    [DONE]), "drop" (the connection closes mid-stream).
    """

    content: str = ""
    kind: str = "text"
    status: int = 200
    delay_s: float = 0.0  # before anything is sent: longer than the client timeout = a timeout
    stall_s: float = 0.0  # a stream pauses this long halfway through
    finish_reason: str = "stop"
    piece: int = 2  # characters per streamed chunk ("token by token")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping out a timeout must not block stop()
    fake: FakeLLM


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        req = json.loads(body)
        reply = self.server.fake.take(req)
        try:
            self._reply(req, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _json(self, status: int, obj: Any) -> None:
        self._raw(status, json.dumps(obj, ensure_ascii=False).encode())

    def _raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, line: str) -> None:
        data = f"data: {line}\n\n".encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _reply(self, req: dict[str, Any], r: Reply) -> None:
        if r.delay_s:
            time.sleep(r.delay_s)
        model = str(req.get("model", MODEL))
        if r.status != 200:
            self._json(r.status, {"error": {"message": r.content or "scripted failure", "type": "server_error"}})
        elif r.kind == "garbage":
            self._raw(200, b"<html><body>502 Bad Gateway</body></html> not json {")
        elif not req.get("stream"):
            self._json(200, completion(r.content, r.finish_reason, model))
        else:
            self._stream(r, model)

    def _stream(self, r: Reply, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [r.content[i : i + r.piece] for i in range(0, len(r.content), r.piece)]
        self._send(json.dumps(chunk({"role": "assistant", "content": ""}, None, model)))
        for i, p in enumerate(pieces):
            if r.kind in ("cut", "drop") and i == len(pieces) // 2:
                break
            if r.stall_s and i == len(pieces) // 2:
                time.sleep(r.stall_s)
            if r.kind == "bad_json" and i == len(pieces) // 2:
                self._send('{"id": "x", "choices": [{"delta": {"content": "半截')  # invalid JSON
                continue
            self._send(json.dumps(chunk({"content": p}, None, model), ensure_ascii=False))
        if r.kind == "drop":
            self.wfile.write(b"ff\r\ndata: {")  # a chunk promised and never delivered
            self.wfile.flush()
            self.close_connection = True
            return
        if r.kind != "cut":
            self._send(json.dumps(chunk({}, r.finish_reason, model)))
            self._send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeLLM:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeLLM:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self, *replies: Reply) -> None:
        """A new script; forget earlier requests."""
        with self._lock:
            self.script = list(replies)
            self.requests = []

    def take(self, req: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(req)
            return self.script.pop(0) if self.script else Reply("no scripted reply", status=500)


def completion(content: str, finish_reason: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": len(content), "total_tokens": 100 + len(content)},
    }


def chunk(delta: dict[str, Any], finish_reason: str | None, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


@contextmanager
def running() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()
