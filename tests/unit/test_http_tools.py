"""HTTP tools connect to the address the SSRF guard checked, stream under the size cap and
treat a redirect as an error.

The servers are on loopback; the guard's notion of "public" is widened to 127.0.0.1 only, so
127.0.0.2 plays the internal address a rebinding DNS answer points at.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from agentfn import http_tools
from agentfn.errors import ToolError
from agentfn.http_tools import MAX_RESPONSE_BYTES, HttpTool, HttpToolSpec
from agentfn.tool_calls import calling


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    keys: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        Handler.hits.append(f"{self.server.server_address[0]}{self.path}")
        Handler.keys.append(self.headers.get("Idempotency-Key"))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("location", "http://127.0.0.2/internal")
            self.end_headers()
            return
        if self.path.startswith("/huge"):
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(80):  # 5 MiB, more than the cap
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading at the cap, as it should
            return
        body = b'{"served_by": "%s"}' % self.server.server_address[0].encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def servers() -> Iterator[int]:
    """The same port on 127.0.0.1 (the checked address) and 127.0.0.2 (the internal one)."""
    first = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = first.server_address[1]
    second = ThreadingHTTPServer(("127.0.0.2", port), Handler)
    for server in (first, second):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    Handler.hits, Handler.keys = [], []
    yield port
    for server in (first, second):
        server.shutdown()
        server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``rebind.test`` answers 127.0.0.1 the first time and 127.0.0.2 after that."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = "127.0.0.1" if not answers else "127.0.0.2"
        answers.append(address)
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(http_tools, "_is_public", lambda a: a == ipaddress.ip_address("127.0.0.1"))
    monkeypatch.delenv(http_tools.ALLOW_PRIVATE_ENV, raising=False)
    return answers


def _tool(url: str) -> HttpTool:
    return HttpTool(HttpToolSpec(name="t", url=url, timeout_s=5))


def test_the_call_connects_to_the_checked_address_not_a_second_answer(
    servers: int, rebinding_dns: list[str]
) -> None:
    reply = _tool(f"http://rebind.test:{servers}/data").invoke({})
    assert reply == {"served_by": "127.0.0.1"}
    assert Handler.hits == ["127.0.0.1/data"]
    assert rebinding_dns == ["127.0.0.1"]  # resolved once, by the guard


def test_an_internal_first_answer_is_refused(servers: int, rebinding_dns: list[str]) -> None:
    rebinding_dns.append("primed")  # every answer is now 127.0.0.2
    with pytest.raises(ToolError, match="non-public address"):
        _tool(f"http://rebind.test:{servers}/data").invoke({})
    assert Handler.hits == []


def test_a_response_over_the_cap_is_refused_while_streaming(
    servers: int, rebinding_dns: list[str]
) -> None:
    with pytest.raises(ToolError, match=f"larger than {MAX_RESPONSE_BYTES} bytes"):
        _tool(f"http://rebind.test:{servers}/huge").invoke({})


def test_a_redirect_is_an_error_and_is_not_followed(servers: int, rebinding_dns: list[str]) -> None:
    with pytest.raises(ToolError, match=r"redirect \(HTTP 302\)"):
        _tool(f"http://rebind.test:{servers}/redirect").invoke({})
    assert Handler.hits == ["127.0.0.1/redirect"]


def test_an_engine_call_sends_its_idempotency_key(servers: int, rebinding_dns: list[str]) -> None:
    with calling("run_1", "a"):
        _tool(f"http://rebind.test:{servers}/data").invoke({})
    assert Handler.keys == ["run_1/a"]
