"""A local Key Vault speaking the documented secrets REST protocol, for the adapter tests.

There is no Key Vault emulator, so this is a small stdlib HTTPS server on 127.0.0.1 that
answers the calls the adapter and its harness make, the way the service documents them:

- every request needs ``api-version``; one without ``Authorization: Bearer <token>`` (or with a
  wrong token) gets 401 with the challenge ``WWW-Authenticate: Bearer
  authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"``
  that the SDK's ChallengeAuthPolicy parses before asking its credential for a token;
- ``GET /secrets/{name}[/]`` (latest version) and ``GET /secrets/{name}/{version}`` return a
  SecretBundle; unknown names give 404 ``SecretNotFound``; a disabled version gives 403
  ``Forbidden`` with inner code ``SecretDisabled``; bad names give 400 ``BadParameter``;
- ``PUT /secrets/{name}`` (what the harness uses to set and rotate) adds a version;
- ``POST /_fake/reset`` (not Key Vault API: test isolation only) forgets every secret.

TLS uses a self-signed certificate for 127.0.0.1/localhost generated at test time; clients
trust it with ``connection_verify=<ca_path>``. The server runs as its own process (started
like the other emulators, once per session); this module is both its entry point and the
helpers tests use to reach it.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

TENANT = "72f988bf-0000-4000-8000-00000000fa11"
RESOURCE = "https://vault.azure.net"
TOKEN = "fake-key-vault-access-token"  # what TestCredential hands out and the server accepts
ENV_VAR = "AGENTFN_TEST_FAKE_KEY_VAULT"
CA_ENV_VAR = "AGENTFN_TEST_FAKE_KEY_VAULT_CA"
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_VERSION = re.compile(r"[0-9a-f]{32}")


# =========================================================================== client side


class TestCredential:
    """A TokenCredential that hands out the fake vault's token without any network call.

    It records what the SDK asked for, so tests can check the challenge was honoured.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.requests.append((scopes, kwargs.get("tenant_id")))
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class FakeKeyVault:
    """Handle on a running fake vault: its URL, CA file, and harness-side writes."""

    url: str
    ca_path: Path
    credentials: list[TestCredential] = field(default_factory=list)

    def credential(self) -> TestCredential:
        cred = TestCredential()
        self.credentials.append(cred)
        return cred

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(
            f"{self.url}{path}?api-version=7.6",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def set_secret(
        self, name: str, value: str, *, enabled: bool = True, content_type: str | None = None
    ) -> str:
        """Create or rotate ``name`` (a new version); return the version id."""
        body: dict[str, Any] = {"value": value, "attributes": {"enabled": enabled}}
        if content_type is not None:
            body["contentType"] = content_type
        bundle = self._request("PUT", f"/secrets/{name}", body)
        return str(bundle["id"]).rsplit("/", 1)[-1]

    def reset(self) -> None:
        self._request("POST", "/_fake/reset")


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost; returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentfn fake key vault")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "vault-cert.pem", folder / "vault-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def ensure_fake_key_vault() -> FakeKeyVault:
    """Start the fake vault once per session (child processes reuse it via the env vars)."""
    from tests.support.emulators import Server, ensure, free_port, start_server

    @dataclass
    class HttpsServer(Server):
        @property
        def url(self) -> str:
            return f"https://127.0.0.1:{self.port}"

    def start() -> Server:
        folder = Path(tempfile.mkdtemp(prefix="fake-key-vault-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        cert, key = make_certificate(folder)
        port = free_port()
        command = [sys.executable, "-u", __file__, "--port", str(port)]
        command += ["--cert", str(cert), "--key", str(key)]
        plain = start_server("fake-key-vault", command, port=port, timeout_s=30)
        os.environ[CA_ENV_VAR] = str(cert)
        return HttpsServer(name=plain.name, port=plain.port, proc=plain.proc, log=plain.log)

    url = ensure("fake-key-vault", ENV_VAR, start)
    return FakeKeyVault(url=url, ca_path=Path(os.environ[CA_ENV_VAR]))


# =========================================================================== server side


@dataclass
class _Version:
    id: str
    value: str
    enabled: bool
    content_type: str | None
    tags: dict[str, str] | None
    created: int


class _Vault:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: dict[str, tuple[str, list[_Version]]] = {}  # lower name -> (name, versions)

    def put(self, name: str, body: dict[str, Any]) -> tuple[str, _Version]:
        attributes = body.get("attributes") or {}
        version = _Version(
            id=uuid.uuid4().hex,
            value=body["value"],
            enabled=bool(attributes.get("enabled", True)),
            content_type=body.get("contentType"),
            tags=body.get("tags"),
            created=int(time.time()),
        )
        with self.lock:
            stored, versions = self.secrets.get(name.lower(), (name, []))
            versions.append(version)
            self.secrets[name.lower()] = (stored, versions)
        return stored, version

    def get(self, name: str, version: str | None) -> tuple[str, _Version] | None:
        with self.lock:
            entry = self.secrets.get(name.lower())
            if entry is None:
                return None
            stored, versions = entry
            if not version:
                return stored, versions[-1]
            for v in versions:
                if v.id == version:
                    return stored, v
        return None


VAULT = _Vault()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKeyVault/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (method, path, status): never bodies, so never secret values.
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    # ------------------------------------------------------------------ plumbing

    def _send(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if raw:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        self._send(status, {"error": error})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        if "api-version" not in query:
            self._error(400, "BadParameter", "The 'api-version' query parameter is missing.")
            return False
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        challenge = (
            f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
            f'resource="{RESOURCE}"'
        )
        message = (
            "AKV10000: Request is missing a Bearer or PoP token."
            if "Authorization" not in self.headers
            else "AKV10032: Invalid issuer."
        )
        self._send(
            401,
            {"error": {"code": "Unauthorized", "message": message}},
            {"WWW-Authenticate": challenge},
        )
        return False

    def _bundle(self, name: str, version: _Version, *, with_value: bool = True) -> dict[str, Any]:
        host = self.headers.get("Host") or "127.0.0.1"
        bundle: dict[str, Any] = {
            "id": f"https://{host}/secrets/{name}/{version.id}",
            "attributes": {
                "enabled": version.enabled,
                "created": version.created,
                "updated": version.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
        }
        if with_value:
            bundle["value"] = version.value
        if version.content_type is not None:
            bundle["contentType"] = version.content_type
        if version.tags:
            bundle["tags"] = version.tags
        return bundle

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/")]
        return parts[1:], parse_qs(url.query)

    # ------------------------------------------------------------------ verbs

    def do_GET(self) -> None:
        self._body()
        parts, query = self._route()
        if not self._authorized(query):
            return
        if parts and parts[-1] == "":
            parts = parts[:-1]  # "/secrets/name/" is the SDK's spelling of "latest"
        if len(parts) not in (2, 3) or parts[0] != "secrets":
            self._error(404, "NotFound", f"No route for GET {urlparse(self.path).path}")
            return
        name, version = parts[1], parts[2] if len(parts) == 3 else None
        if not _NAME.fullmatch(name) or (version and not _VERSION.fullmatch(version)):
            self._error(400, "BadParameter", f"Invalid secret name or version: {name}")
            return
        found = VAULT.get(name, version)
        if found is None:
            self._error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name}{'/' + version if version else ''} was not "
                "found in this key vault. If you recently deleted this secret you may be able "
                "to recover it using the correct recovery command.",
            )
            return
        stored, v = found
        if not v.enabled:
            self._error(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            )
            return
        self._send(200, self._bundle(stored, v))

    def do_PUT(self) -> None:
        raw = self._body()
        parts, query = self._route()
        if not self._authorized(query):
            return
        if len(parts) != 2 or parts[0] != "secrets" or not _NAME.fullmatch(parts[1]):
            self._error(400, "BadParameter", "Invalid secret name.")
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            self._error(400, "BadParameter", "Property 'value' is required and must be a string.")
            return
        stored, version = VAULT.put(parts[1], body)
        self._send(200, self._bundle(stored, version))

    def do_POST(self) -> None:
        self._body()
        parts, query = self._route()
        if not self._authorized(query):
            return
        if parts != ["_fake", "reset"]:
            self._error(404, "NotFound", f"No route for POST {urlparse(self.path).path}")
            return
        with VAULT.lock:
            VAULT.secrets.clear()
        self._send(204, None)


def serve(port: int, cert: Path, key: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    # The handshake runs on the handler's first read, in its own thread, not in accept().
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    sys.stderr.write(f"fake key vault listening on https://127.0.0.1:{port}\n")
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.port, args.cert, args.key)


if __name__ == "__main__":
    main()
