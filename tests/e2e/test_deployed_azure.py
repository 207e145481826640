"""The Azure artifact as deployed: built by ``agentfn package``, loaded as the Python worker
loads ``function_app.py``, in a clean interpreter with only the stack's app settings.

Each step runs in ``tests.support.deployed.run_clean``: ``python3.11 -I -S`` whose path is the
app folder and its ``.python_packages`` (nothing from this test's environment) and whose
environment is one app's ``app_settings`` read from the Terraform module, what the platform
sets, and Azurite's connection string. The HTTP app serves ``/healthz`` and an authenticated
``/v1`` call that enqueues jobs; the worker app's queue function then runs each message the
HTTP call left in the queue (read from Azurite, as the host would hand it over) until the run
completes.

Two things cannot be as deployed offline, and are substituted as narrowly as possible:

- Storage: the apps reach the account with their managed identity; Azurite takes no Entra
  tokens over plain HTTP, so ``AZURE_STORAGE_CONNECTION_STRING`` (an emulator endpoint)
  addresses the same account names the stack's URLs carry, with Azurite's published key.
- Key Vault: no variable redirects a vault's address and no managed-identity token exists
  here, so inside the process the runtime's secret store is the same ``KeyVaultSecretStore``
  pointed at the loopback vault with a test credential. Everything else is the stack's.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentfn.auth import PLACEHOLDER_KEYS, SingleKeyAuthenticator
from agentfn.errors import Unauthorized
from agentfn.functions.local.packaging import Artifact
from agentfn.testing import MemorySecretStore
from tests.support.deployed import PLATFORM_ENV, build_artifact, platform_path, run_clean
from tests.support.emulators.azure import ACCOUNT, ensure_azurite
from tests.support.fake_key_vault import TOKEN, FakeKeyVault, ensure_fake_key_vault
from tests.support.stacks import app_settings, renderer, resources

VARIABLES = {"name": "agentfn", "location": "westeurope", "artifact": "agentfn-azure.zip"}
WORKFLOW = """\
name: smoke
inputs:
  go: {type: boolean}
nodes:
  - id: first
    type: condition
    expression: input.go
  - id: second
    type: condition
    expression: not steps.first.output
edges:
  - {from: first, to: second}
output: "{{ steps.second.output }}"
"""

pytestmark = pytest.mark.slow


def resolved(settings: dict[str, str]) -> dict[str, str]:
    """Resource attributes resolved to what Azurite stands in for: the storage account is
    Azurite's; a container's, queue's or vault's name is the name the stack gives it. What
    only the host reads (the package URL, the queue endpoint) stays as the stack renders it."""
    render = renderer("azure", VARIABLES)

    def attribute(match: re.Match[str]) -> str:
        rtype, name, attr = match.group(1).split(".")
        if (rtype, attr) == ("azurerm_storage_account", "name"):
            return ACCOUNT
        if attr == "name":
            return render(resources("azure", rtype)[name]["name"])
        return match.group(0)

    return {k: re.sub(r"<([\w.]+)>", attribute, v) for k, v in settings.items()}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return build_artifact("azure", tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    """Azurite holding the resources the stack creates: the store container and both queues."""
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    conn = ensure_azurite()
    env = resolved(app_settings("http", VARIABLES))
    container = env["AGENTFN_STORAGE"].rsplit("/", 1)[1]
    queues = [
        resources("azure", "azurerm_storage_queue")[q]["name"] for q in ("work", "dead_letter")
    ]
    queue_names = [renderer("azure", VARIABLES)(q) for q in queues]
    blobs = BlobServiceClient.from_connection_string(conn)
    service = QueueServiceClient.from_connection_string(conn)
    for name in queue_names:
        service.get_queue_client(name).create_queue()
    blobs.get_container_client(container).create_container()
    try:
        yield conn
    finally:
        for name in queue_names:
            service.get_queue_client(name).delete_queue()
        blobs.get_container_client(container).delete_container()


@pytest.fixture
def vault() -> FakeKeyVault:
    v = ensure_fake_key_vault()
    v.reset()
    return v


def environment(app: str, conn: str) -> tuple[dict[str, str], dict[str, str]]:
    """(the process environment, what the stack sets) for one app."""
    stack = resolved(app_settings(app, VARIABLES))
    return {**PLATFORM_ENV["azure"], **stack, "AZURE_STORAGE_CONNECTION_STRING": conn}, stack


PRELUDE = """
import json
import azure.functions as func
from azure.functions.queue import QueueMessage
import function_app

FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}


def use_vault(url, ca):
    from azure.core.credentials import AccessToken
    from agentfn.adapters.azure.key_vault import KeyVaultSecretStore
    from agentfn.functions import runtime

    class Credential:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(TOKEN_VALUE, 4102444800)

        def close(self):
            pass

    store = KeyVaultSecretStore(url, credential=Credential(), connection_verify=ca)
    runtime.current().__dict__["secrets"] = store


def call(method, path, body=b"", headers=None):
    request = func.HttpRequest(
        method=method, url="https://agentfn-http.azurewebsites.net" + path,
        headers=headers or {}, params={}, route_params={"path": path.lstrip("/")}, body=body,
    )
    response = FUNCTIONS.get("http", FUNCTIONS.get("health"))(request)
    return response.status_code, json.loads(response.get_body() or b"null")
""".replace("TOKEN_VALUE", repr(TOKEN))


def run_app(artifact: Artifact, tmp: Path, app: str, conn: str, code: str) -> Any:
    env, stack = environment(app, conn)
    path = platform_path("azure", artifact, tmp)
    out = run_clean("azure", PRELUDE + code, path=path, env=env, stack_env=stack, cwd=tmp)
    return json.loads(out.strip().splitlines()[-1])


def test_the_app_serves_and_runs_as_deployed(
    artifact: Artifact, azurite: str, vault: FakeKeyVault, tmp_path: Path
) -> None:
    from azure.storage.queue import QueueClient

    key = secrets.token_urlsafe(36)
    vault.set_secret("AGENTFN-API-KEY", key)
    auth = {"authorization": f"Bearer {key}"}
    http = f"""
use_vault({vault.url!r}, {str(vault.ca_path)!r})
out = {{"functions": sorted(FUNCTIONS)}}
out["healthz"] = call("GET", "/healthz")
page = FUNCTIONS["http"](func.HttpRequest(method="GET", url="https://agentfn-http.azurewebsites.net/",
                         headers={{}}, params={{}}, route_params={{"path": ""}}, body=b""))
out["console"] = b"agentfn console" in page.get_body()
out["anonymous"] = call("GET", "/v1/runs")[0]
out["put"] = call("PUT", "/v1/workflows/smoke", {WORKFLOW.encode()!r},
                  {{**{auth!r}, "content-type": "application/yaml"}})[0]
out["run"] = call("POST", "/v1/runs", b'{{"workflow": "smoke", "input": {{"go": true}}}}',
                  {{**{auth!r}, "content-type": "application/json"}})
print(json.dumps(out))
"""
    out = run_app(artifact, tmp_path, "http", azurite, http)
    assert out["functions"] == ["http", "worker"]
    assert out["healthz"][0] == 200 and out["healthz"][1]["status"] == "ok"
    assert out["console"] is True  # the console's files are in the deployed app
    assert out["anonymous"] == 401
    assert out["put"] == 200
    status, run = out["run"]
    assert status == 202, run

    # The worker app: each message the HTTP app (then the worker) enqueued, as the host hands
    # it over — base64 decoded, with its id, pop receipt and dequeue count — until none is left.
    env, _ = environment("worker", azurite)
    queue = QueueClient.from_connection_string(azurite, env["AGENTFN_QUEUE_NAME"])
    handled = 0
    for _ in range(10):
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=120))
        if not batch:
            break
        deliveries = [
            {
                "id": m.id,
                "body": base64.b64decode(m.content).decode(),
                "pop_receipt": m.pop_receipt,
                "dequeue_count": m.dequeue_count,
            }
            for m in batch
        ]
        worker = f"""
for d in {deliveries!r}:
    # What the worker's queue converter builds (azure.functions.queue.QueueMessage).
    FUNCTIONS["worker"](QueueMessage(
        id=d["id"], body=d["body"].encode(), pop_receipt=d["pop_receipt"],
        dequeue_count=d["dequeue_count"],
    ))
print(json.dumps(len({deliveries!r})))
"""
        handled += run_app(artifact, tmp_path, "worker", azurite, worker)
        for m in batch:  # the function succeeded: the host deletes the message
            queue.delete_message(m.id, m.pop_receipt)
    assert handled >= 2  # two steps, each its own job

    check = f"""
use_vault({vault.url!r}, {str(vault.ca_path)!r})
print(json.dumps(call("GET", "/v1/runs/{run["id"]}", b"", {auth!r})))
"""
    status, final = run_app(artifact, tmp_path, "http", azurite, check)
    assert status == 200 and final["status"] == "completed", final
    assert final["output"] is False


def test_an_app_missing_its_dependencies_answers_503_naming_them(
    artifact: Artifact, azurite: str, tmp_path: Path
) -> None:
    """What a zip deployed without its vendored pydantic does: not "0 functions loaded", but
    a health route that says why."""
    site = tmp_path / "site-packages"
    shutil.copytree(artifact.path / ".python_packages" / "lib" / "site-packages", site)
    for gone in site.glob("pydantic*"):
        shutil.rmtree(gone)
    env, stack = environment("http", azurite)
    code = (
        PRELUDE
        + 'print(json.dumps({"functions": sorted(FUNCTIONS), "healthz": call("GET", "/healthz"), "v1": call("GET", "/v1/runs")}))'
    )
    out = run_clean(
        "azure", code, path=[artifact.path, site], env=env, stack_env=stack, cwd=tmp_path
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["functions"] == ["health"]
    for status, body in (result["healthz"], result["v1"]):
        assert status == 503
        assert body["error"]["code"] == "app_unavailable"
        assert body["error"]["module"] == "pydantic"
        assert "pydantic==" in body["error"]["message"]


def test_the_project_lives_where_azure_puts_the_package() -> None:
    """Azure mounts the package at the script root: the project the stack names is inside."""
    root = PLATFORM_ENV["azure"]["AzureWebJobsScriptRoot"]
    for app in ("http", "worker"):
        assert app_settings(app, VARIABLES)["AGENTFN_PROJECT"] == f"{root}/project"


@pytest.mark.parametrize("stored", [None, "", "   ", *sorted(PLACEHOLDER_KEYS)])
def test_the_api_refuses_every_call_until_a_real_key_is_set(stored: str | None) -> None:
    """Fail closed: a missing, empty or placeholder key secret admits no key at all — not
    even the placeholder itself."""
    values = {} if stored is None else {"AGENTFN_API_KEY": stored}
    auth = SingleKeyAuthenticator(MemorySecretStore(values))
    for presented in ["set-after-deploy", stored.strip() if stored and stored.strip() else "x"]:
        with pytest.raises(Unauthorized, match="no API key is configured"):
            auth.authenticate({"authorization": f"Bearer {presented}"})
    real = SingleKeyAuthenticator(MemorySecretStore({"AGENTFN_API_KEY": "k" * 48}))
    assert real.authenticate({"x-api-key": "k" * 48}).tenant == "default"


def test_the_guard_names_wrong_versions_and_passes_exact_pins(tmp_path: Path) -> None:
    from importlib.metadata import version

    from agentfn.functions.azure.guard import check_requirements

    pins = tmp_path / "requirements.txt"
    pins.write_text(f"azure-functions=={version('azure-functions')}\nPyYAML=={version('pyyaml')}\n")
    check_requirements(pins)  # what is installed is what is pinned
    pins.write_text("azure-functions==0.0.1\nno-such-dist==1.0\n")
    with pytest.raises(ModuleNotFoundError) as info:
        check_requirements(pins)
    assert "azure-functions==0.0.1 (found " in str(info.value)
    assert "no-such-dist==1.0 (not installed)" in str(info.value)
    assert info.value.name == "azure-functions"
