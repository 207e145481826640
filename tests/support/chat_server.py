"""A local fake of the OpenAI Chat Completions endpoint, for testing adapters without a network.

It binds to 127.0.0.1 on a free port, checks that each request has the shape the real API
accepts, records it (headers included, so tests can check the bearer token), and answers from a
queue of responses the test scripted: text, tool calls, an HTTP error, or a delay.

    with ChatCompletionsServer() as server:
        server.reply_text("hi")
        model = OpenAIChatModel("gpt-test", api_key="sk-test", base_url=server.base_url)
        model.chat(...)
        assert server.requests[0].body["model"] == "gpt-test"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/chat/completions"
_ROLES = {"system", "developer", "user", "assistant", "tool"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def bearer(self) -> str | None:
        auth = self.authorization or ""
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None


@dataclass
class ScriptedResponse:
    """One queued answer. ``delay_s`` is waited before answering (to provoke client timeouts)."""

    status: int = 200
    body: dict[str, Any] | None = None  # None with status 200: build a completion from below
    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, int] | None = None
    delay_s: float = 0.0


class ChatCompletionsServer:
    """Threaded fake server; use as a context manager or call ``start``/``stop``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.problems: list[str] = []  # request-shape violations seen (also answered with 400)
        self._queue: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ChatCompletionsServer:
        handler = _make_handler(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # don't wait for handlers sleeping in a delay
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ChatCompletionsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ scripting

    def enqueue(self, response: ScriptedResponse) -> None:
        with self._lock:
            self._queue.append(response)

    def reply_text(
        self,
        content: str,
        *,
        usage: tuple[int, int] | None = (10, 5),
        model: str | None = None,
        finish_reason: str = "stop",
        delay_s: float = 0.0,
    ) -> None:
        """Queue a plain assistant message; ``usage=None`` leaves the usage block out."""
        self.enqueue(
            ScriptedResponse(
                content=content,
                usage=_usage(usage),
                model=model,
                finish_reason=finish_reason,
                delay_s=delay_s,
            )
        )

    def reply_tool_calls(
        self,
        calls: list[tuple[str, dict[str, Any] | str]],
        *,
        content: str | None = None,
        ids: list[str] | None = None,
        usage: tuple[int, int] | None = (10, 5),
        model: str | None = None,
        finish_reason: str = "tool_calls",
    ) -> None:
        """Queue tool calls: ``(name, arguments)``; a str is sent verbatim (even invalid JSON)."""
        tool_calls = []
        for i, (name, args) in enumerate(calls):
            tool_calls.append(
                {
                    "id": ids[i] if ids else f"call_srv_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
        self.enqueue(
            ScriptedResponse(
                content=content,
                tool_calls=tool_calls,
                usage=_usage(usage),
                model=model,
                finish_reason=finish_reason,
            )
        )

    def reply_error(
        self,
        status: int,
        message: str,
        *,
        type: str = "api_error",
        code: str | None = None,
    ) -> None:
        """Queue an HTTP error with an OpenAI-style error body."""
        self.enqueue(
            ScriptedResponse(
                status=status,
                body={"error": {"message": message, "type": type, "param": None, "code": code}},
            )
        )

    def reply_delay(self, delay_s: float, content: str = "too late") -> None:
        """Queue a text reply that is only sent after ``delay_s`` seconds."""
        self.reply_text(content, delay_s=delay_s)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------ serving

    def _handle(self, request: RecordedRequest) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            self.requests.append(request)
            self._counter += 1
            number = self._counter
        if request.method != "POST" or request.path.split("?")[0] != PATH:
            return 404, _error(f"no route {request.method} {request.path}", "not_found"), 0.0
        problems = _validate(request.body)
        if problems:
            with self._lock:
                self.problems.extend(problems)
            return 400, _error("; ".join(problems), "invalid_request_error"), 0.0
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        if scripted is None:
            return 500, _error("ChatCompletionsServer: no scripted response left", "test"), 0.0
        if scripted.body is not None:
            return scripted.status, scripted.body, scripted.delay_s
        message: dict[str, Any] = {"role": "assistant", "content": scripted.content}
        if scripted.tool_calls:
            message["tool_calls"] = scripted.tool_calls
        body: dict[str, Any] = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": scripted.model or request.body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": scripted.finish_reason
                    or ("tool_calls" if scripted.tool_calls else "stop"),
                }
            ],
        }
        if scripted.usage is not None:
            body["usage"] = scripted.usage
        return scripted.status, body, scripted.delay_s


def _usage(usage: tuple[int, int] | None) -> dict[str, int] | None:
    if usage is None:
        return None
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error(message: str, type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def _validate(body: Any) -> list[str]:
    """The request-shape rules of the real API that an adapter is most likely to break."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems: list[str] = []
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("'model' must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("'messages' must be a non-empty array")
        messages = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            problems.append(f"{where} must be an object")
            continue
        role = msg.get("role")
        if role not in _ROLES:
            problems.append(f"{where}.role {role!r} is not one of {sorted(_ROLES)}")
        content = msg.get("content")
        if content is not None and not isinstance(content, str | list):
            problems.append(f"{where}.content must be a string, an array or null")
        if role != "assistant" and content is None:
            problems.append(f"{where}: {role} messages need content")
        if role == "assistant" and content is None and not msg.get("tool_calls"):
            problems.append(f"{where}: assistant messages need content or tool_calls")
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            problems.append(f"{where}: tool messages need a string 'tool_call_id'")
        if role == "assistant" and "tool_calls" in msg:
            calls = msg["tool_calls"]
            if not isinstance(calls, list) or not calls:
                problems.append(f"{where}.tool_calls must be a non-empty array when present")
                calls = []
            for j, call in enumerate(calls):
                cw = f"{where}.tool_calls[{j}]"
                if not isinstance(call, dict) or call.get("type") != "function":
                    problems.append(f"{cw} must be an object with type 'function'")
                    continue
                if not isinstance(call.get("id"), str):
                    problems.append(f"{cw}.id must be a string")
                fn = call.get("function")
                if (
                    not isinstance(fn, dict)
                    or not isinstance(fn.get("name"), str)
                    or not isinstance(fn.get("arguments"), str)
                ):
                    problems.append(f"{cw}.function needs string 'name' and 'arguments'")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            problems.append("'tools' must be a non-empty array when present")
            tools = []
        for i, tool in enumerate(tools):
            tw = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                problems.append(f"{tw} must be an object with type 'function'")
                continue
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                problems.append(f"{tw}.function.name must be a string")
            elif "parameters" in fn and not isinstance(fn["parameters"], dict):
                problems.append(f"{tw}.function.parameters must be an object")
    return problems


def _make_handler(server: ChatCompletionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw
            recorded = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            status, payload, delay_s = server._handle(recorded)
            if delay_s and server._stopping.wait(delay_s):
                return  # shutting down: drop the reply
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to answer

        do_POST = _serve
        do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
