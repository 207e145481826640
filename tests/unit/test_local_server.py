"""`agentfn serve` as a person or a scanner meets it: JSON for every status, bodies bounded
before they are read, chunked bodies read, idle connections closed, a busy port one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import MAX_BODY_BYTES, Api, Call, Registry, Routes, json_response
from agentfn.functions.local import server as local_server
from agentfn.functions.local.server import serve

routes = Routes()


@routes.route("POST", "/echo", public=True, summary="echo")
def echo(services: Any, call: Call) -> Any:
    return json_response(200, {"bytes": len(call.request.body)})


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(local_server, "IDLE_TIMEOUT_S", 1.0)
    httpd = serve(Api(object(), Registry(routes)), "127.0.0.1", 0)  # type: ignore[arg-type]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def exchange(port: int, raw: bytes, *, read_timeout: float = 5.0) -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(
            (ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")),
            b"0",
        ))  # fmt: skip
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if body else None


def test_a_chunked_body_is_read(port: int) -> None:
    raw = (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert exchange(port, raw) == (200, {"bytes": 11})


def test_a_chunked_body_over_the_limit_is_413_without_reading_it_all(port: int) -> None:
    size = MAX_BODY_BYTES + 10
    raw = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" + b"%x\r\n" % size
    status, body = exchange(port, raw)  # the chunk itself is never sent: no need to read it
    assert status == 413 and body["error"]["field"] == "body"


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1e3"])
def test_a_content_length_that_is_not_a_count_is_400(port: int, value: bytes) -> None:
    raw = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: " + value + b"\r\n\r\nxyz"
    status, body = exchange(port, raw)
    assert status == 400 and body["error"]["field"] == "body"
    assert "is not a byte count" in body["error"]["message"]


def test_a_huge_declared_length_is_413_before_any_byte_is_read(port: int) -> None:
    raw = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 314572800\r\n\r\n"
    status, body = exchange(port, raw)  # 300 MiB announced, none sent: answered at once
    assert status == 413 and body["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("method", [b"TRACE", b"FROB"])
def test_other_methods_get_json_not_html(port: int, method: bytes) -> None:
    status, body = exchange(port, method + b" /echo HTTP/1.1\r\nhost: x\r\n\r\n")
    assert status in (405, 501) and "error" in body


def test_a_malformed_request_line_gets_json(port: int) -> None:
    status, body = exchange(port, b"GARBAGE\r\n\r\n")
    assert status == 400 and body["error"]["code"] == "protocol_error"


def test_an_idle_connection_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert s.recv(1024) == b""  # the server hung up
        assert time.monotonic() - started < 4


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "agentfn.functions.local.cli", "--home", str(tmp_path),
             "serve", "--port", str(busy), "--workers", "0"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot listen on 127.0.0.1:{busy}")
