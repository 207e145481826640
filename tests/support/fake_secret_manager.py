"""A local Secret Manager: the documented v1 REST protocol, for the calls agentfn makes.

Google ships no Secret Manager emulator, so the adapter is tested against this server through
the official client's REST transport. It speaks (https://cloud.google.com/secret-manager/docs/
reference/rest):

- ``POST   /v1/projects/{p}/secrets?secretId={s}``             create a secret
- ``GET    /v1/projects/{p}/secrets/{s}``                      get a secret
- ``DELETE /v1/projects/{p}/secrets/{s}``                      delete a secret and its versions
- ``POST   /v1/projects/{p}/secrets/{s}:addVersion``           add a version (the payload)
- ``GET    /v1/projects/{p}/secrets/{s}/versions/{v}:access``  read a version ("latest" = newest)
- ``POST   /v1/projects/{p}/secrets/{s}/versions/{v}:disable`` / ``:enable`` / ``:destroy``

Payloads carry ``dataCrc32c`` (decimal int64 as a JSON string, like the real API) and are
checked on ``addVersion``; errors use Google's JSON error body. Runs on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c

__all__ = ["FakeSecretManager"]

_ID = r"[A-Za-z0-9_-]{1,255}"
_PROJECT = r"[^/:]+"
_SECRETS = re.compile(rf"/v1/projects/(?P<p>{_PROJECT})/secrets")
_SECRET = re.compile(rf"/v1/projects/(?P<p>{_PROJECT})/secrets/(?P<s>[^/:]+)")
_ADD = re.compile(rf"/v1/projects/(?P<p>{_PROJECT})/secrets/(?P<s>[^/:]+):addVersion")
_VERSION_OP = re.compile(
    rf"/v1/projects/(?P<p>{_PROJECT})/secrets/(?P<s>[^/:]+)/versions/(?P<v>[^/:]+)"
    r":(?P<op>access|disable|enable|destroy)"
)
_STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
}


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


@dataclass
class _Version:
    number: int
    data: bytes
    created: float
    state: str = "ENABLED"


@dataclass
class _Secret:
    created: float
    versions: list[_Version] = field(default_factory=list)


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, "UNKNOWN")


class FakeSecretManager:
    """Secrets in memory, served over HTTP; ``requests`` logs (method, path) of every call."""

    def __init__(self) -> None:
        self._secrets: dict[tuple[str, str], _Secret] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSecretManager:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-secret-manager", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def access_count(self, project: str, secret: str) -> int:
        """How many ``:access`` calls named this secret (for cache tests)."""
        prefix = f"/v1/projects/{project}/secrets/{secret}/versions/"
        return sum(1 for m, p in self.requests if p.startswith(prefix) and p.endswith(":access"))

    # ------------------------------------------------------------------ operations

    def create_secret(self, project: str, secret_id: str) -> dict[str, Any]:
        if not re.fullmatch(_ID, secret_id):
            raise ApiError(400, f"Invalid secret ID {secret_id!r}.")
        with self._lock:
            if (project, secret_id) in self._secrets:
                raise ApiError(
                    409, f"Secret [projects/{project}/secrets/{secret_id}] already exists."
                )
            secret = _Secret(created=time.time())
            self._secrets[(project, secret_id)] = secret
        return self._secret_json(project, secret_id, secret)

    def get_secret(self, project: str, secret_id: str) -> dict[str, Any]:
        with self._lock:
            return self._secret_json(project, secret_id, self._secret(project, secret_id))

    def delete_secret(self, project: str, secret_id: str) -> dict[str, Any]:
        with self._lock:
            self._secret(project, secret_id)
            del self._secrets[(project, secret_id)]
        return {}

    def add_version(self, project: str, secret_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = body.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("data", ""), str):
            raise ApiError(400, "payload.data must be base64 text.")
        try:
            data = base64.b64decode(payload.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "payload.data is not valid base64.") from None
        crc = payload.get("dataCrc32c")
        if crc is not None and int(crc) != google_crc32c.value(data):
            raise ApiError(400, "Checksum mismatch: payload.dataCrc32c does not match the data.")
        with self._lock:
            secret = self._secret(project, secret_id)
            version = _Version(number=len(secret.versions) + 1, data=data, created=time.time())
            secret.versions.append(version)
        return self._version_json(project, secret_id, version)

    def version_op(self, project: str, secret_id: str, ref: str, op: str) -> dict[str, Any]:
        with self._lock:
            secret = self._secret(project, secret_id)
            version = self._version(project, secret_id, secret, ref)
            name = f"projects/{project}/secrets/{secret_id}/versions/{version.number}"
            if op == "access":
                if version.state != "ENABLED":
                    raise ApiError(
                        400,
                        f"Secret Version [{name}] is in {version.state} state.",
                        "FAILED_PRECONDITION",
                    )
                return {
                    "name": name,
                    "payload": {
                        "data": base64.b64encode(version.data).decode("ascii"),
                        "dataCrc32c": str(google_crc32c.value(version.data)),
                    },
                }
            if version.state == "DESTROYED":
                raise ApiError(400, f"Secret Version [{name}] is destroyed.", "FAILED_PRECONDITION")
            if op == "destroy":
                version.data = b""
            version.state = {"disable": "DISABLED", "enable": "ENABLED", "destroy": "DESTROYED"}[op]
            return self._version_json(project, secret_id, version)

    # ------------------------------------------------------------------ internals

    def _secret(self, project: str, secret_id: str) -> _Secret:
        secret = self._secrets.get((project, secret_id))
        if secret is None:
            raise ApiError(404, f"Secret [projects/{project}/secrets/{secret_id}] not found.")
        return secret

    @staticmethod
    def _version(project: str, secret_id: str, secret: _Secret, ref: str) -> _Version:
        if ref == "latest":
            if not secret.versions:
                raise ApiError(
                    404,
                    f"Secret [projects/{project}/secrets/{secret_id}] not found or has no versions.",
                )
            return secret.versions[-1]
        if not ref.isdigit() or not 1 <= int(ref) <= len(secret.versions):
            raise ApiError(
                404,
                f"Secret Version [projects/{project}/secrets/{secret_id}/versions/{ref}] not found.",
            )
        return secret.versions[int(ref) - 1]

    @staticmethod
    def _secret_json(project: str, secret_id: str, secret: _Secret) -> dict[str, Any]:
        return {
            "name": f"projects/{project}/secrets/{secret_id}",
            "replication": {"automatic": {}},
            "createTime": _rfc3339(secret.created),
        }

    @staticmethod
    def _version_json(project: str, secret_id: str, version: _Version) -> dict[str, Any]:
        return {
            "name": f"projects/{project}/secrets/{secret_id}/versions/{version.number}",
            "createTime": _rfc3339(version.created),
            "state": version.state,
        }


def _handler_for(fake: FakeSecretManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: request lines would only clutter test output."""

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            query = parse_qs(split.query)
            fake.requests.append((method, path))
            try:
                body = self._body()
                self._send(200, self._route(method, path, query, body))
            except ApiError as exc:
                self._send(
                    exc.code,
                    {"error": {"code": exc.code, "message": exc.message, "status": exc.status}},
                )

        def _route(
            self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
        ) -> dict[str, Any]:
            if m := _VERSION_OP.fullmatch(path):
                want = "GET" if m["op"] == "access" else "POST"
                self._allow(method, want)
                return fake.version_op(m["p"], m["s"], m["v"], m["op"])
            if m := _ADD.fullmatch(path):
                self._allow(method, "POST")
                return fake.add_version(m["p"], m["s"], body)
            if m := _SECRET.fullmatch(path):
                if method == "DELETE":
                    return fake.delete_secret(m["p"], m["s"])
                self._allow(method, "GET")
                return fake.get_secret(m["p"], m["s"])
            if m := _SECRETS.fullmatch(path):
                self._allow(method, "POST")
                secret_id = (query.get("secretId") or [""])[0]
                return fake.create_secret(m["p"], secret_id)
            raise ApiError(404, f"Unknown path {path!r}.")

        @staticmethod
        def _allow(method: str, want: str) -> None:
            if method != want:
                raise ApiError(405, f"Method {method} is not allowed here.")

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return {}
            try:
                parsed = json.loads(self.rfile.read(length))
            except ValueError:
                raise ApiError(400, "The request body is not JSON.") from None
            if not isinstance(parsed, dict):
                raise ApiError(400, "The request body must be a JSON object.")
            return parsed

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
