"""GcpSecretManagerStore and the local Secret Manager REST server it is tested against."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from types import SimpleNamespace
from typing import Any

import google_crc32c
import pytest
from google.api_core import exceptions as gexc

from agentfn.adapters.gcp.secret_manager import ENDPOINT_VAR, GcpSecretManagerStore
from agentfn.errors import ConfigError, InternalError, NotFound, UserError
from tests.contract.backends.gcp import put_secret, secret_manager_client
from tests.contract.harness import FakeClock
from tests.support.emulators.gcp import secret_manager
from tests.support.logs import debug_logging

SECRET = "s3cr3t-VALUE-do-not-leak"


@pytest.fixture
def project() -> str:
    secret_manager()
    return f"unit-{uuid.uuid4().hex[:12]}"


def http(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """A raw REST call to the fake server, as any HTTP client would make it."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        secret_manager().url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --------------------------------------------------------------------------- configuration


def test_from_url() -> None:
    store = GcpSecretManagerStore.from_url("gcp-sm://my-project", ttl_s=5)
    assert (store.project, store.ttl_s) == ("my-project", 5.0)
    assert repr(store) == "GcpSecretManagerStore(project='my-project', prefix='', cached=0)"
    store = GcpSecretManagerStore.from_url("gcp-sm://my-project?prefix=stack-a-")
    assert (store.project, store.prefix) == ("my-project", "stack-a-")


@pytest.mark.parametrize(
    "url",
    [
        "env://x",
        "gcp-sm://",
        "gcp-sm://p/secret",
        "gcp-sm://p?x=1",
        "gcp-sm://Bad_Project",
        "gcp-sm://p?prefix=",
        "gcp-sm://p?prefix=a&prefix=b",
        "gcp-sm://p?prefix=a&x=1",
    ],
)
def test_bad_urls_name_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        GcpSecretManagerStore.from_url(url)
    assert info.value.field == "url"


def test_validation() -> None:
    with pytest.raises(ConfigError) as info:
        GcpSecretManagerStore("p-1", ttl_s=-1)
    assert info.value.field == "ttl_s"
    store = GcpSecretManagerStore("p-1")
    for bad in ["", "a/b", "a.b", "x" * 256, "A=B", 5]:
        with pytest.raises(UserError) as info:
            store.get(bad)  # type: ignore[arg-type]
        assert info.value.field == "name"


def test_a_prefix_must_be_secret_id_characters() -> None:
    with pytest.raises(ConfigError) as info:
        GcpSecretManagerStore("p-1", prefix="stack/")
    assert info.value.field == "prefix"
    with pytest.raises(UserError):
        GcpSecretManagerStore("p-1", prefix="x" * 250).get("OPENAI_API_KEY")  # id > 255


# --------------------------------------------------------------------------- behaviour


def test_two_stacks_in_one_project_read_their_own_secrets(project: str) -> None:
    """The stack names each secret ``<stack>-<name>``; the code asks for ``<name>``."""
    client = secret_manager_client()
    put_secret(client, project, "alpha-OPENAI_API_KEY", "key of alpha")
    put_secret(client, project, "beta-OPENAI_API_KEY", "key of beta")
    alpha = GcpSecretManagerStore.from_url(f"gcp-sm://{project}?prefix=alpha-")
    beta = GcpSecretManagerStore.from_url(f"gcp-sm://{project}?prefix=beta-")
    assert alpha.get("OPENAI_API_KEY") == "key of alpha"
    assert beta.get("OPENAI_API_KEY") == "key of beta"
    with pytest.raises(NotFound) as info:
        GcpSecretManagerStore(project, prefix="gamma-").get("OPENAI_API_KEY")
    assert "gamma-OPENAI_API_KEY" in str(info.value)


def test_cache_serves_within_the_ttl_and_misses_are_not_cached(project: str) -> None:
    server = secret_manager()
    client = secret_manager_client()
    clock = FakeClock()
    store = GcpSecretManagerStore(project, ttl_s=60, clock=clock)
    with pytest.raises(NotFound):
        store.get("LATE")
    put_secret(client, project, "LATE", "here")
    assert store.get("LATE") == "here"  # the miss was not cached
    assert store.get("LATE") == "here"
    assert server.access_count(project, "LATE") == 2  # one miss, one fetch, then the cache
    put_secret(client, project, "LATE", "rotated")
    clock.advance(59)
    assert store.get("LATE") == "here"
    clock.advance(2)
    assert store.get("LATE") == "rotated"
    store.clear()
    assert "cached=0" in repr(store)


def test_ttl_zero_reads_every_time(project: str) -> None:
    server = secret_manager()
    put_secret(secret_manager_client(), project, "K", "v")
    store = GcpSecretManagerStore(project, ttl_s=0)
    for _ in range(3):
        assert store.get("K") == "v"
    assert server.access_count(project, "K") == 3


def test_disabled_or_deleted_secrets_are_not_found(project: str) -> None:
    client = secret_manager_client()
    put_secret(client, project, "K", "v1")
    put_secret(client, project, "K", "v2")
    store = GcpSecretManagerStore(project, ttl_s=0)
    assert store.get("K") == "v2"
    client.disable_secret_version(name=f"projects/{project}/secrets/K/versions/2")
    with pytest.raises(NotFound, match="no enabled latest version"):
        store.get("K")
    client.delete_secret(name=f"projects/{project}/secrets/K")
    with pytest.raises(NotFound, match="'K' not found"):
        store.get("K")


def test_values_are_unicode_and_exact(project: str) -> None:
    value = "  line1\nline2 ü €  "
    put_secret(secret_manager_client(), project, "MULTI", value)
    assert GcpSecretManagerStore(project).get("MULTI") == value


def test_nothing_leaks_in_logs_or_errors(project: str, caplog: pytest.LogCaptureFixture) -> None:
    debug_logging(caplog)
    put_secret(secret_manager_client(), project, "PW", SECRET)
    store = GcpSecretManagerStore(project)
    assert store.get("PW") == SECRET
    assert "PW" in caplog.text and "version 1" in caplog.text
    assert SECRET not in caplog.text and SECRET not in repr(store)


class StubClient:
    """Answers access_secret_version with canned payloads or errors (no server needed)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def access_secret_version(self, *, name: str) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _response(data: bytes, crc: int | None = None) -> Any:
    payload = SimpleNamespace(data=data, data_crc32c=crc)

    class Payload(SimpleNamespace):
        def __contains__(self, field: str) -> bool:
            return field == "data_crc32c" and crc is not None

    return SimpleNamespace(name="projects/p/secrets/K/versions/3", payload=Payload(**vars(payload)))


def test_corrupted_payloads_are_read_again_then_refused() -> None:
    good = _response(SECRET.encode(), google_crc32c.value(SECRET.encode()))
    bad = _response(SECRET.encode(), 12345)
    client = StubClient(bad, good)
    store = GcpSecretManagerStore("p-1", client=client)  # type: ignore[arg-type]
    assert store.get("K") == SECRET
    assert client.calls == 2
    store = GcpSecretManagerStore("p-1", client=StubClient(bad, bad))  # type: ignore[arg-type]
    with pytest.raises(InternalError, match="CRC32C") as info:
        store.get("K")
    assert SECRET not in str(info.value)


def test_binary_payloads_and_permission_errors_are_config_errors() -> None:
    store = GcpSecretManagerStore(
        "p-1", client=StubClient(_response(b"\xff\xfe" + SECRET.encode()))
    )  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        store.get("K")
    assert SECRET not in str(info.value)
    store = GcpSecretManagerStore("p-1", client=StubClient(gexc.PermissionDenied("no")))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="secretAccessor"):
        store.get("K")


def test_client_comes_from_the_endpoint_variable(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret(secret_manager_client(), project, "K", "v")
    # host:port without a scheme means plain HTTP too.
    monkeypatch.setenv(ENDPOINT_VAR, secret_manager().url.removeprefix("http://"))
    assert GcpSecretManagerStore(project).get("K") == "v"


# --------------------------------------------------------------------------- the fake server


def test_fake_server_speaks_the_rest_protocol(project: str) -> None:
    base = f"/v1/projects/{project}/secrets"
    assert http("POST", f"{base}?secretId=API_KEY", {"replication": {"automatic": {}}})[0] == 200
    status, body = http("POST", f"{base}?secretId=API_KEY", {})
    assert (status, body["error"]["status"]) == (409, "ALREADY_EXISTS")
    status, body = http("GET", f"{base}/API_KEY/versions/latest:access")
    assert (status, body["error"]["code"], body["error"]["status"]) == (404, 404, "NOT_FOUND")
    assert "not found or has no versions" in body["error"]["message"]

    data = b"v1"
    payload = {
        "data": base64.b64encode(data).decode(),
        "dataCrc32c": str(google_crc32c.value(data)),
    }
    status, body = http("POST", f"{base}/API_KEY:addVersion", {"payload": payload})
    assert (status, body["name"], body["state"]) == (
        200,
        f"projects/{project}/secrets/API_KEY/versions/1",
        "ENABLED",
    )
    bad = {"data": base64.b64encode(b"v2").decode(), "dataCrc32c": "1"}
    status, body = http("POST", f"{base}/API_KEY:addVersion", {"payload": bad})
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")

    status, body = http("GET", f"{base}/API_KEY/versions/latest:access")
    assert status == 200 and body["name"].endswith("/versions/1")
    assert base64.b64decode(body["payload"]["data"]) == data
    assert body["payload"]["dataCrc32c"] == str(google_crc32c.value(data))
    assert http("GET", f"{base}/API_KEY/versions/1:access")[0] == 200
    assert http("GET", f"{base}/API_KEY/versions/2:access")[0] == 404
    assert http("GET", f"{base}/API_KEY")[1]["name"] == f"projects/{project}/secrets/API_KEY"
    assert http("DELETE", f"{base}/API_KEY") == (200, {})
    assert http("GET", f"{base}/API_KEY")[0] == 404
    assert http("GET", "/v1/elsewhere")[0] == 404
