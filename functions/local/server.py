"""``agentfn serve``: the HTTP API on a local port, the laptop stand-in for an HTTP function."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from agentfn.api import MAX_BODY_BYTES, Api, Request, Response

log = logging.getLogger("agentfn.serve")


def to_request(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(target)
    return Request(
        method=method,
        path=parts.path,
        headers=headers,
        query=dict(parse_qsl(parts.query)),
        body=body,
    )


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agentfn"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            # Read at most one byte past the limit: enough for the API to answer 413.
            body = self.rfile.read(min(length, MAX_BODY_BYTES + 1)) if length else b""
            if length > len(body):
                self.close_connection = True
            request = to_request(self.command, self.path, dict(self.headers.items()), body)
            self._reply(api.handle(request))

        def _reply(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def serve(api: Api, host: str, port: int) -> ThreadingHTTPServer:
    """Bind the API (port 0 picks a free port); call ``serve_forever`` on the result."""
    server = ThreadingHTTPServer((host, port), make_handler(api))
    server.daemon_threads = True
    return server
