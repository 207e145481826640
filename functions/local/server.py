"""``agentfn serve``: the HTTP API on a local port, the laptop stand-in for an HTTP function.

The standard library's threading server, hardened rather than replaced: it adds no dependency
to the local default, and the cloud entry points never use it. What a person (or a port
scanner) meets here is what the HTTP functions answer: JSON for every status, bodies read
only up to the API's limit — by ``Content-Length`` or chunked — and never past it before the
size is known, idle or half-open connections closed after ``IDLE_TIMEOUT_S``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

from agentfn.api import MAX_BODY_BYTES, Api, Request, Response, error_response
from agentfn.errors import PayloadTooLarge, ProtocolError

log = logging.getLogger("agentfn.serve")

IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing this long is closed
_CHUNK_LINE_MAX = 1024


class BodyError(Exception):
    """The request body cannot be read as sent; ``status`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def to_request(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(target)
    return Request(
        method=method,
        path=parts.path,
        headers=headers,
        query=dict(parse_qsl(parts.query)),
        body=body,
        streams=True,  # this server writes Response.stream as it comes (server-sent events)
    )


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agentfn"
        timeout = IDLE_TIMEOUT_S

        def _serve(self) -> None:
            try:
                body = self._body()
            except BodyError as exc:
                self.close_connection = True  # what is left of the body is never read
                self._json_error(exc.status, exc.message, field="body")
                return
            request = to_request(self.command, self.path, dict(self.headers.items()), body)
            self._reply(api.handle(request))

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                return self._chunked()
            raw = self.headers.get("content-length")
            if raw is None:
                return b""
            if not raw.strip().isdigit():
                raise BodyError(400, f"content-length {raw!r} is not a byte count")
            length = int(raw)
            if length > MAX_BODY_BYTES:
                raise BodyError(413, f"body exceeds the limit of {MAX_BODY_BYTES} bytes")
            return self.rfile.read(length)

        def _chunked(self) -> bytes:
            body = bytearray()
            while True:
                line = self.rfile.readline(_CHUNK_LINE_MAX)
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise BodyError(400, "malformed chunked body") from None
                if size < 0:
                    raise BodyError(400, "malformed chunked body")
                if size == 0:
                    while self.rfile.readline(_CHUNK_LINE_MAX).strip():
                        pass  # trailers
                    return bytes(body)
                if len(body) + size > MAX_BODY_BYTES:
                    raise BodyError(413, f"body exceeds the limit of {MAX_BODY_BYTES} bytes")
                body += self.rfile.read(size)
                self.rfile.readline(_CHUNK_LINE_MAX)  # the CRLF after the chunk

        def _reply(self, response: Response) -> None:
            self._correlation_id = response.headers.get("x-correlation-id")  # for the log line
            streaming = response.stream is not None and self.command != "HEAD"
            if streaming:
                self.close_connection = True  # the stream's end is the connection's
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if not streaming:
                self.send_header("content-length", str(len(response.body)))
            if self.close_connection:
                self.send_header("connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            if streaming and response.stream is not None:
                self._stream(response.stream)

        def _stream(self, chunks: Iterator[bytes]) -> None:
            """Write each chunk as it comes (the stream sends a heartbeat while idle); a client
            that went away, or stopped reading, ends it."""
            try:
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:  # gone, or not reading for IDLE_TIMEOUT_S
                log.info("%s left its event stream", self.address_string())
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        def _json_error(self, status: int, message: str, field: str | None = None) -> None:
            error = (
                PayloadTooLarge(message, field=field)
                if status == 413
                else ProtocolError(message, status=status, field=field)
            )
            headers = getattr(self, "headers", None)  # unset when the request line is bad
            correlation = (headers.get("x-correlation-id") if headers else None) or uuid4().hex
            self._reply(error_response(error, {"x-correlation-id": correlation}))

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """The stdlib's own errors (bad request line, unknown method, oversized headers)
            as the same JSON envelope as every other error, never an HTML page."""
            self.close_connection = True
            if not self.request_version.startswith("HTTP/1"):
                self.request_version = "HTTP/1.1"  # unparsable line: still answer with headers
            self._json_error(code, message or HTTPStatus(code).phrase)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            """Any other method (TRACE, QUERY, ...) goes to the API too, which answers 405
            with the methods the path allows, as on every other entry point."""
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            cid = getattr(self, "_correlation_id", None)
            log.info("%s %s", self.address_string(), format % args, extra={"correlation_id": cid})

    return Handler


def serve(api: Api, host: str, port: int) -> ThreadingHTTPServer:
    """Bind the API (port 0 picks a free port); call ``serve_forever`` on the result."""
    server = ThreadingHTTPServer((host, port), make_handler(api))
    server.daemon_threads = True
    return server
