"""Declarative HTTP tools: register an API endpoint as a tool without writing Python.

A tool definition names a method, a URL template and a JSON schema of its arguments. Calls
refuse private, loopback, link-local and otherwise non-public addresses (server-side request
forgery would otherwise let a prompt reach the cloud's metadata service or internal APIs);
``AGENTFN_HTTP_TOOLS_ALLOW_PRIVATE=1`` lifts that for local development only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import string
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentfn.errors import ToolError
from agentfn.ports import ToolSpec
from agentfn.tool_calls import current_key

ALLOW_PRIVATE_ENV = "AGENTFN_HTTP_TOOLS_ALLOW_PRIVATE"
MAX_RESPONSE_BYTES = 1 << 20


class HttpToolSpec(BaseModel):
    """A tool that calls an HTTP endpoint; ``{name}`` placeholders in the URL take arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(default="", max_length=1024)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(max_length=2048)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments",
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; use headers")
        for _, field, spec, conversion in string.Formatter().parse(v):
            if field is not None and (not field.isidentifier() or spec or conversion):
                raise ValueError(f"placeholder {{{field}}} must be a plain argument name")
        return v

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("type") != "object":
            raise ValueError("must be a JSON schema of type 'object'")
        return v

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


class HttpTool:
    """Executable form of an :class:`HttpToolSpec` (same interface as ``agentfn.tools.Tool``)."""

    def __init__(self, definition: HttpToolSpec) -> None:
        self.definition = definition
        self.name = definition.name
        self.description = definition.description

    def spec(self) -> ToolSpec:
        return self.definition.spec()

    def invoke(self, arguments: dict[str, Any]) -> Any:
        import httpx  # only when an HTTP tool actually runs

        d = self.definition
        _check_required(d, arguments)
        url, rest = _expand_url(d.url, arguments)
        addresses = guard_public(url)
        headers = dict(d.headers)
        key = current_key()
        if key is not None:  # repeats of one call (a worker taken over) carry the same key
            headers.setdefault("Idempotency-Key", key)
        kwargs: dict[str, Any] = {"headers": headers, "timeout": d.timeout_s}
        if d.method in ("GET", "DELETE"):
            kwargs["params"] = {k: _scalar(v) for k, v in rest.items()}
        else:
            kwargs["json"] = rest
        transport = _pinned_transport(addresses)
        try:
            with (
                httpx.Client(
                    transport=transport, follow_redirects=False, trust_env=False
                ) as client,
                client.stream(d.method, url, **kwargs) as response,
            ):
                if response.is_redirect:
                    raise ToolError(
                        f"tool {d.name!r}: {d.method} answered a redirect (HTTP "
                        f"{response.status_code}); HTTP tools do not follow redirects"
                    )
                if response.status_code >= 400:
                    raise ToolError(
                        f"tool {d.name!r}: {d.method} returned HTTP {response.status_code}"
                    )
                body = _read_capped(response, d.name)
        except httpx.HTTPError as exc:
            raise ToolError(f"tool {d.name!r}: request failed: {type(exc).__name__}") from None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", errors="replace")


def _read_capped(response: Any, name: str) -> bytes:
    """The body, read in chunks and refused past ``MAX_RESPONSE_BYTES`` (never held whole)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ToolError(f"tool {name!r}: response is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _pinned_transport(addresses: list[str] | None) -> Any:
    """A transport that connects to the addresses the guard checked, never re-resolving the
    host (a second DNS answer — rebinding — could point at loopback). TLS still verifies the
    URL's host name. ``None``: the guard is off (local development), plain transport."""
    import httpcore
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    if addresses is None:
        return transport
    pinned = list(addresses)

    class Pinned(httpcore.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.NetworkStream:
            error: Exception | None = None
            for address in pinned:
                try:
                    return super().connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                except httpcore.ConnectError as exc:
                    error = exc
            raise error or httpcore.ConnectError(f"no address for {host}")

    # httpx builds its pool without a way to pass a network backend: replace the pool.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=Pinned()
    )
    return transport


def guard_public(url: str) -> list[str] | None:
    """Resolve the URL's host once and refuse non-public addresses (SSRF guard); the checked
    addresses are the only ones the call may connect to. ``None`` when the guard is off."""
    if os.environ.get(ALLOW_PRIVATE_ENV) == "1":
        return None
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise ToolError(f"cannot resolve host {host!r}", field="url") from None
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not _is_public(address):
            raise ToolError(
                f"refusing to call {host!r}: it resolves to a non-public address ({address})",
                field="url",
            )
        if str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def _check_required(d: HttpToolSpec, arguments: dict[str, Any]) -> None:
    for name in d.parameters.get("required", []):
        if name not in arguments:
            raise ToolError(f"tool {d.name!r} rejected its arguments: {name}: Field required")
    known = set(d.parameters.get("properties", {}))
    if known and d.parameters.get("additionalProperties") is False:
        extra = sorted(set(arguments) - known)
        if extra:
            raise ToolError(f"tool {d.name!r} rejected its arguments: {extra[0]}: not allowed")


def _expand_url(template: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    used = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = sorted(used - set(arguments))
    if missing:
        raise ToolError(f"URL placeholder {{{missing[0]}}} has no argument", field=missing[0])
    url = template.format_map({k: quote(str(arguments[k]), safe="") for k in used})
    return url, {k: v for k, v in arguments.items() if k not in used}


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
