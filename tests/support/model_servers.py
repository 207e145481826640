"""Local servers speaking each cloud model's documented REST protocol, and the platforms'
credential endpoints, for testing the model adapters without a network.

- ``ConverseServer``: Bedrock Runtime ``POST /model/{modelId}/converse`` (SigV4-signed).
- ``GenerateContentServer``: Vertex AI ``POST /v1/projects/{p}/locations/{l}/publishers/google/
  models/{m}:generateContent`` (a bearer token the ``CredentialServer`` issued).
- ``AzureChatServer``: Azure OpenAI ``POST /openai/deployments/{d}/chat/completions
  ?api-version=…`` (``api-key`` header, or a bearer token the ``CredentialServer`` issued).
- ``CredentialServer``: Google's metadata server and OAuth token endpoint, and App Service's
  managed-identity endpoint — what ADC and azure-identity read on the platform.

A model server decodes each request into a ``ChatRequest``, asks its responder (often the
scripted model with a blueprint's rule file, the agent known by its instructions) and encodes
the ``ChatReply`` in the provider's format. Requests are checked the way the real API checks
them (roles alternate, every tool call answered), recorded, and may be failed on purpose.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from agentfn.adapters.models.scripted import ScriptedModel
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, ToolSpec

Responder = Callable[[ChatRequest], ChatReply]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class BadRequest(Exception):
    """What the real API would refuse with a 400."""


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any
    model: str  # the model (or deployment) the path names


@dataclass
class Failure:
    status: int
    code: str
    message: str


def scripted(rules: Path, agents: dict[str, str]) -> Responder:
    """The scripted model answering as the agent whose instructions the system prompt holds."""
    model = ScriptedModel.from_file(rules)

    def respond(request: ChatRequest) -> ChatReply:
        system = next((m.content or "" for m in request.messages if m.role == "system"), "")
        agent = next(
            (name for text, name in agents.items() if text.strip() == system.strip()), None
        )
        return model.chat(request.model_copy(update={"agent": agent}))

    return respond


class _Server:
    """A threaded HTTP server on 127.0.0.1 (``_handler`` says what it serves); a context
    manager."""

    _handler: Callable[[], type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> Any:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"


def _send(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", headers.pop("content-type", "application/json"))
    handler.send_header("content-length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


class ModelServer(_Server, ABC):
    """The protocol-independent part: routing, recording, failures, the responder."""

    route: ClassVar[re.Pattern[str]]

    def __init__(self, respond: Responder, *, tokens: CredentialServer | None = None) -> None:
        super().__init__()
        self.respond = respond
        self.tokens = tokens
        self.requests: list[Recorded] = []
        self.replies: list[ChatReply] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()

    def fail_next(self, status: int, code: str, message: str, times: int = 1) -> None:
        self._failures.extend(Failure(status, code, message) for _ in range(times))

    # What each protocol defines
    @abstractmethod
    def authorize(self, headers: dict[str, str]) -> str | None:
        """None when the request's credentials are good, else why not."""

    @abstractmethod
    def decode(self, body: Any) -> ChatRequest:
        """The request as the port's ``ChatRequest``; ``BadRequest`` where the API refuses."""

    @abstractmethod
    def encode(self, model: str, reply: ChatReply) -> dict[str, Any]:
        """The reply in the provider's response shape."""

    @abstractmethod
    def error(self, failure: Failure) -> tuple[dict[str, Any], dict[str, str]]:
        """The provider's error body and headers."""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                found = server.route.fullmatch(urlsplit(self.path).path)
                if found is None:
                    return server._fail(self, Failure(404, "NotFound", f"no route {self.path}"))
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.loads(raw)
                model = unquote(found.group("model"))
                with server._lock:
                    server.requests.append(Recorded(self.path, headers, body, model))
                    failure = server._failures.popleft() if server._failures else None
                refused = server.authorize(headers)
                if refused:
                    failure = Failure(401, "Unauthorized", refused)
                if failure is None:
                    failure = server.check_route(model, parse_qs(urlsplit(self.path).query))
                if failure is not None:
                    return server._fail(self, failure)
                try:
                    request = server.decode(body)
                except BadRequest as exc:
                    return server._fail(self, Failure(400, "ValidationException", str(exc)))
                reply = server.respond(request.model_copy(update={"model": model}))
                with server._lock:
                    server.replies.append(reply)
                _send(self, 200, server.encode(model, reply), {})

            def log_message(self, *args: object) -> None:
                return

        return Handler

    def check_route(self, model: str, query: dict[str, list[str]]) -> Failure | None:
        """A failure for a model or query the service does not know."""
        return None

    def _fail(self, handler: BaseHTTPRequestHandler, failure: Failure) -> None:
        body, headers = self.error(failure)
        _send(handler, failure.status, body, headers)


def proto_field(message: dict[str, Any], name: str) -> Any:
    """A field by its JSON name or its proto name, as Google's JSON parsers accept both (the
    SDK sends a declaration's schema as ``parameters_json_schema``, keeping its keys as they
    are)."""
    snake = re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)
    return message.get(name, message.get(snake))


def _tool_names(messages: list[Message]) -> dict[str, str]:
    return {c.id: c.name for m in messages for c in m.tool_calls}


def _check_answered(messages: list[Message]) -> None:
    """Every tool call of an assistant turn answered, in the next turn, by its id."""
    for i, m in enumerate(messages):
        if not m.tool_calls:
            continue
        answered = {r.tool_call_id for r in messages[i + 1 :] if r.role == "tool"}
        missing = {c.id for c in m.tool_calls} - answered
        if missing:
            raise BadRequest(f"tool calls {sorted(missing)} have no result")


# ---------------------------------------------------------------------------- Bedrock


class ConverseServer(ModelServer):
    """Bedrock Runtime Converse (docs.aws.amazon.com/bedrock/latest/APIReference/
    API_runtime_Converse.html); errors carry ``x-amzn-errortype``."""

    route = re.compile(r"/model/(?P<model>[^/]+)/converse")

    def authorize(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        ok = auth.startswith("AWS4-HMAC-SHA256 Credential=") and "/bedrock/aws4_request" in auth
        return None if ok else "The request signature we calculated does not match"

    def decode(self, body: Any) -> ChatRequest:
        messages = [Message(role="system", content=s["text"]) for s in body.get("system", [])]
        turns = body["messages"]
        if not turns or turns[0]["role"] != "user":
            raise BadRequest("A conversation must start with a user message.")
        for a, b in itertools.pairwise(turns):
            if a["role"] == b["role"]:
                raise BadRequest("A conversation must alternate between user and assistant roles.")
        for turn in turns:
            texts = [b["text"] for b in turn["content"] if b.get("text")]
            calls = [
                ToolCall(id=b["toolUse"]["toolUseId"], name=b["toolUse"]["name"],
                         arguments=b["toolUse"]["input"])
                for b in turn["content"] if "toolUse" in b
            ]  # fmt: skip
            for block in turn["content"]:
                if "toolResult" in block:
                    result = block["toolResult"]
                    text = "".join(c.get("text", "") for c in result["content"])
                    name = _tool_names(messages).get(result["toolUseId"])
                    if name is None:
                        raise BadRequest(f"toolResult {result['toolUseId']} answers no toolUse")
                    messages.append(
                        Message(role="tool", content=text, tool_call_id=result["toolUseId"],
                                name=name)
                    )  # fmt: skip
            if texts or calls:
                role = "assistant" if turn["role"] == "assistant" else "user"
                messages.append(
                    Message(role=role, content="".join(texts) or None, tool_calls=calls)
                )
        _check_answered(messages)
        tools = [
            ToolSpec(name=t["toolSpec"]["name"], description=t["toolSpec"]["description"],
                     parameters=t["toolSpec"]["inputSchema"]["json"])
            for t in body.get("toolConfig", {}).get("tools", [])
        ]  # fmt: skip
        return ChatRequest(messages=messages, tools=tools)

    def encode(self, model: str, reply: ChatReply) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"text": reply.content}] if reply.content else []
        content += [
            {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}}
            for c in reply.tool_calls
        ]
        usage = reply.usage
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "tool_use" if reply.tool_calls else "end_turn",
            "usage": {
                "inputTokens": usage.prompt_tokens,
                "outputTokens": usage.completion_tokens,
                "totalTokens": usage.prompt_tokens + usage.completion_tokens,
            },
            "metrics": {"latencyMs": 5},
        }

    def error(self, failure: Failure) -> tuple[dict[str, Any], dict[str, str]]:
        return {"message": failure.message}, {"x-amzn-errortype": failure.code}


# ---------------------------------------------------------------------------- Vertex AI


class GenerateContentServer(ModelServer):
    """Vertex AI ``generateContent`` (cloud.google.com/vertex-ai/docs/reference/rest/v1/
    projects.locations.publishers.models/generateContent); errors in Google's JSON shape."""

    route = re.compile(
        r"/(?P<version>v1\w*)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
        r"/publishers/google/models/(?P<model>[^/:]+):generateContent"
    )
    model_version_suffix = "-001"
    """Replies name a version of the model, as Vertex AI's ``modelVersion`` does."""

    def authorize(self, headers: dict[str, str]) -> str | None:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens is not None and bearer in self.tokens.issued:
            return None
        return "Request had invalid authentication credentials."

    def decode(self, body: Any) -> ChatRequest:
        messages: list[Message] = []
        system = body.get("systemInstruction")
        if system:
            messages.append(
                Message(role="system", content="".join(p["text"] for p in system["parts"]))
            )
        turns = body["contents"]
        for a, b in itertools.pairwise(turns):
            if a["role"] == b["role"]:
                raise BadRequest(
                    "Please ensure that multiturn requests alternate between user and model."
                )
        for i, turn in enumerate(turns):
            parts = turn["parts"]
            responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
            if responses:
                previous = turns[i - 1]["parts"] if i else []
                if len(responses) != sum("functionCall" in p for p in previous):
                    raise BadRequest(
                        "Please ensure that the number of function response parts is equal to "
                        "the number of function call parts of the function call turn."
                    )
            for r in responses:
                messages.append(
                    Message(role="tool", content=str(r["response"].get("output", r["response"])),
                            tool_call_id=r.get("id"), name=r["name"])
                )  # fmt: skip
            texts = [p["text"] for p in parts if p.get("text")]
            calls = [
                ToolCall(id=p["functionCall"].get("id") or p["functionCall"]["name"],
                         name=p["functionCall"]["name"], arguments=p["functionCall"].get("args", {}))
                for p in parts if "functionCall" in p
            ]  # fmt: skip
            if texts or calls:
                role = "assistant" if turn["role"] == "model" else "user"
                messages.append(
                    Message(role=role, content="".join(texts) or None, tool_calls=calls)
                )
        tools = [
            ToolSpec(name=d["name"], description=d.get("description", ""),
                     parameters=proto_field(d, "parametersJsonSchema") or d.get("parameters") or {})
            for t in body.get("tools", []) for d in t.get("functionDeclarations", [])
        ]  # fmt: skip
        return ChatRequest(messages=messages, tools=tools)

    def encode(self, model: str, reply: ChatReply) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": reply.content}] if reply.content else []
        parts += [
            {"functionCall": {"id": c.id, "name": c.name, "args": c.arguments}}
            for c in reply.tool_calls
        ]
        usage = reply.usage
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": usage.prompt_tokens,
                "candidatesTokenCount": usage.completion_tokens,
                "totalTokenCount": usage.prompt_tokens + usage.completion_tokens,
            },
            "modelVersion": model + self.model_version_suffix,
            "responseId": f"resp-{len(self.requests)}",
        }

    def error(self, failure: Failure) -> tuple[dict[str, Any], dict[str, str]]:
        return {
            "error": {"code": failure.status, "message": failure.message, "status": failure.code}
        }, {}


# ---------------------------------------------------------------------------- Azure OpenAI


class AzureChatServer(ModelServer):
    """Azure OpenAI chat completions (learn.microsoft.com/azure/ai-services/openai/reference);
    replies name the deployment's model, as Azure's do."""

    route = re.compile(r"/openai/deployments/(?P<model>[^/]+)/chat/completions")
    api_versions: ClassVar[set[str]] = {"2024-10-21", "2024-06-01", "2025-01-01-preview"}

    def __init__(
        self,
        respond: Responder,
        *,
        tokens: CredentialServer | None = None,
        api_key: str | None = None,
        deployments: dict[str, str] | None = None,
    ) -> None:
        super().__init__(respond, tokens=tokens)
        self.api_key = api_key
        self.deployments = deployments or {}  # deployment -> the model it serves

    def authorize(self, headers: dict[str, str]) -> str | None:
        if self.api_key is not None and headers.get("api-key") == self.api_key:
            return None
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens is not None and bearer in self.tokens.issued:
            return None
        return "Access denied due to invalid subscription key or wrong API endpoint."

    def check_route(self, model: str, query: dict[str, list[str]]) -> Failure | None:
        version = (query.get("api-version") or [""])[0]
        if version not in self.api_versions:
            return Failure(404, "404", "Resource not found")
        if model not in self.deployments:
            return Failure(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        return None

    def decode(self, body: Any) -> ChatRequest:
        messages = []
        for m in body["messages"]:
            calls = [
                ToolCall(id=c["id"], name=c["function"]["name"],
                         arguments=json.loads(c["function"]["arguments"]))
                for c in m.get("tool_calls") or []
            ]  # fmt: skip
            messages.append(
                Message(role=m["role"], content=m.get("content"), tool_calls=calls,
                        tool_call_id=m.get("tool_call_id"))
            )  # fmt: skip
        names = _tool_names(messages)
        for m in messages:
            if m.role == "tool":
                if m.tool_call_id not in names:
                    raise BadRequest("'tool' messages must respond to a preceding 'tool_calls'")
                m.name = names[m.tool_call_id]
        _check_answered(messages)
        tools = [
            ToolSpec(name=t["function"]["name"], description=t["function"].get("description", ""),
                     parameters=t["function"].get("parameters", {}))
            for t in body.get("tools", [])
        ]  # fmt: skip
        return ChatRequest(messages=messages, tools=tools)

    def encode(self, model: str, reply: ChatReply) -> dict[str, Any]:
        calls = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in reply.tool_calls
        ]  # fmt: skip
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if calls:
            message["tool_calls"] = calls
        usage = reply.usage
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.deployments.get(model, model),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }

    def error(self, failure: Failure) -> tuple[dict[str, Any], dict[str, str]]:
        headers = {"retry-after": "0"} if failure.status == 429 else {}
        return {"error": {"code": failure.code, "message": failure.message}}, headers


# ---------------------------------------------------------------------------- credentials


@dataclass
class CredentialServer(_Server):
    """The platforms' token endpoints, each as documented:

    - Google's metadata server (``GCE_METADATA_HOST`` / ``GCE_METADATA_IP``): the ping, the
      default service account's token, the project id;
    - Google's OAuth token endpoint (a service account key's ``token_uri``), JWT-bearer grant;
    - App Service's managed-identity endpoint (``IDENTITY_ENDPOINT`` with
      ``X-IDENTITY-HEADER``, api-version 2019-08-01).
    """

    project: str = "agentfn-test-project"
    identity_header: str = "local-identity-header"
    issued: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)  # which mechanism each token came from
    refuse_identity: bool = False
    _public_key: Any = None

    def __post_init__(self) -> None:
        super().__init__()

    def _token(self, kind: str) -> str:
        token = f"{kind}-token-{len(self.issued) + 1}"
        self.issued.add(token)
        self.asked.append(kind)
        return token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                google = {"metadata-flavor": "Google"}
                if parts.path.startswith("/computeMetadata/") or parts.path == "/":
                    if self.headers.get("metadata-flavor") != "Google":
                        return _send(self, 403, "Missing Metadata-Flavor header", {})
                    if parts.path == "/":
                        return _send(self, 200, "", {**google, "content-type": "text/plain"})
                    return self._metadata(parts.path.removeprefix("/computeMetadata/v1/"), google)
                if parts.path == "/msi/token":
                    return self._app_service(parse_qs(parts.query))
                _send(self, 404, {"error": "not found"}, {})

            def _metadata(self, path: str, google: dict[str, str]) -> None:
                text = {**google, "content-type": "application/text"}
                if path == "project/project-id":
                    return _send(self, 200, server.project, text)
                if path == "universe/universe-domain":
                    return _send(self, 200, "googleapis.com", text)
                if path.startswith("instance/service-accounts/default/token"):
                    token = server._token("metadata")
                    body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                    return _send(self, 200, body, dict(google))
                if path.startswith("instance/service-accounts/default"):
                    email = f"worker@{server.project}.iam.gserviceaccount.com"
                    info = {"email": email, "aliases": ["default"], "scopes": ["cloud-platform"]}
                    return _send(self, 200, info, dict(google))
                _send(self, 404, "not found", text)

            def _app_service(self, query: dict[str, list[str]]) -> None:
                if self.headers.get("x-identity-header") != server.identity_header:
                    return _send(self, 401, {"error": "invalid identity header"}, {})
                if server.refuse_identity:
                    body = {"error": "invalid_resource", "error_description": "no identity"}
                    return _send(self, 400, body, {})
                if query.get("api-version") != ["2019-08-01"] or not query.get("resource"):
                    return _send(self, 400, {"error": "bad request"}, {})
                token = server._token("identity")
                body = {
                    "access_token": token,
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": query["resource"][0],
                    "token_type": "Bearer",
                }
                _send(self, 200, body, {})

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                grant = form.get("grant_type", [""])[0]
                if urlsplit(self.path).path != "/token" or grant != JWT_BEARER:
                    return _send(self, 400, {"error": "unsupported_grant_type"}, {})
                if not server._signed_by_the_key(form.get("assertion", [""])[0]):
                    return _send(self, 400, {"error": "invalid_grant"}, {})
                token = server._token("oauth")
                _send(self, 200, {"access_token": token, "expires_in": 3599}, {})

            def log_message(self, *args: object) -> None:
                return

        return Handler

    def adc_file(self, folder: Path) -> Path:
        """An ADC file — a service account key — whose token endpoint is this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = folder / "service-account.json"
        info = {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": "local-key-1",
            "private_key": pem,
            "client_email": f"worker@{self.project}.iam.gserviceaccount.com",
            "client_id": "1000000000000000000",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(info))
        return path

    def _signed_by_the_key(self, assertion: str) -> bool:
        """The JWT-bearer assertion is RS256-signed by the key ``adc_file`` wrote, for Google's
        token endpoint (its audience whatever the key's ``token_uri``)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        head, claims, signature = assertion.split(".")
        try:
            self._public_key.verify(
                _b64(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, AttributeError):
            return False
        return bool(json.loads(_b64(claims)).get("aud") == "https://oauth2.googleapis.com/token")

    @property
    def metadata_host(self) -> str:
        return self.url.removeprefix("http://")

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/msi/token"
