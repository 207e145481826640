"""Facts of the Azure stack that decide whether it works once applied, read from its HCL.

azurerm cannot be downloaded here, so nothing applies this stack (test_provider_schemas checks
it against the provider's schema and pins); these tests pin what an apply would get wrong: how
the package is deployed and redeployed, the settings azurerm owns, that the queue the adapter
uses is the queue the stack grants, and the deployer's version record.
"""

from __future__ import annotations

import re
from typing import Any

import hcl2
import pytest

from agentfn.adapters.azure.storage_queue import AzureStorageQueue
from agentfn.api._models import CreateRun
from agentfn.functions.azure.function_app import QUEUE_CONNECTION
from tests.support.stacks import MODULES, app_settings, renderer, resources, stack_environment

NAME = "agentfn"
VARIABLES = {"name": NAME, "location": "westeurope", "artifact": "dist/agentfn-azure.zip"}


@pytest.mark.parametrize("app", ["http", "worker"])
def test_apps_run_the_vendored_zip_from_a_package_named_by_its_content(app: str) -> None:
    body = resources("azure", "azurerm_linux_function_app")[app]
    assert "zip_deploy_file" not in body  # one fixed path: never redeployed after the first apply
    settings = app_settings(app, VARIABLES)
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == "<azurerm_storage_blob.package.url>"
    assert settings["SCM_DO_BUILD_DURING_DEPLOYMENT"] == "false"  # dependencies are vendored
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "SystemAssigned"
    package = resources("azure", "azurerm_storage_blob")["package"]
    assert "filesha256(var.artifact)" in str(package["name"])  # new content, new URL
    assert str(package["source"]).strip('"') == "${var.artifact}"
    container = resources("azure", "azurerm_storage_container")["packages"]
    assert str(container["container_access_type"]).strip('"') == "private"


@pytest.mark.parametrize("app", ["http", "worker"])
def test_no_setting_azurerm_owns_is_repeated(app: str) -> None:
    """azurerm sets these from application_stack and functions_extension_version; repeating
    them in app_settings shows a diff on every plan."""
    owned = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"}
    assert not owned & set(app_settings(app, VARIABLES))


@pytest.mark.parametrize("app", ["http", "worker"])
def test_the_queue_trigger_connection_is_the_one_the_function_names(app: str) -> None:
    """Identity-based: the trigger's connection setting holds only the queue endpoint."""
    settings = app_settings(app, VARIABLES)
    assert settings[f"{QUEUE_CONNECTION}__queueServiceUri"] == (
        "<azurerm_storage_account.main.primary_queue_endpoint>"
    )
    assert settings["AGENTFN_QUEUE_NAME"] == f"{NAME}-work"


class RecordingService:
    """A QueueServiceClient stand-in that records which queues the adapter addresses."""

    account_name = "agentfnstore"

    def __init__(self) -> None:
        self.names: set[str] = set()

    def get_queue_client(self, name: str) -> Any:
        self.names.add(name)
        service = self

        class Client:
            def send_message(self, content: str, **kwargs: Any) -> Any:
                return type("Sent", (), {"id": f"{name}-{len(service.names)}"})()

        return Client()

    def list_queues(self, **kwargs: Any) -> list[Any]:
        raise AssertionError("with priorities=message the adapter never lists queues")


def test_every_queue_the_adapter_uses_is_in_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API accepts priorities -10..10; with the stack's queue URL every one of them goes to
    a queue the stack creates (and grants, test_permissions_azure) — never a side queue."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    url = stack_environment("azure", VARIABLES)["AGENTFN_QUEUE"]
    url = url.replace("<azurerm_storage_account.main.name>", RecordingService.account_name)
    service = RecordingService()
    queue = AzureStorageQueue.from_url(url, service=service)
    field = CreateRun.model_fields["priority"]
    bounds = {type(m).__name__: m for m in field.metadata}
    low, high = int(bounds["Ge"].ge), int(bounds["Le"].le)
    for priority in range(low, high + 1):
        queue.send({"p": priority}, priority=priority)
        queue.send({"p": priority}, priority=priority, delay=30 * 24 * 3600)  # a hop
    assert queue._priorities() == [0]  # receive polls only the queue itself
    render = renderer("azure", VARIABLES)
    stack_queues = {render(b["name"]) for b in resources("azure", "azurerm_storage_queue").values()}
    assert service.names | {queue.poison_name} <= stack_queues, sorted(service.names)


def test_the_deployer_can_write_the_version_record() -> None:
    """``agentfn deploy`` writes deployments/ into the container the ``bucket`` output names,
    as the principal running Terraform: that principal holds a blob data role on it."""
    from agentfn.functions.local.deploy import VERSIONS

    outputs: dict[str, Any] = {}
    for tf in sorted((MODULES / "azure").glob("*.tf")):
        with tf.open() as f:
            for item in hcl2.load(f).get("output", []):
                outputs.update({k.strip('"'): v for k, v in item.items()})
    assert "azurerm_storage_container.store.name" in str(outputs["bucket"]["value"])
    grants = [
        b
        for b in resources("azure", "azurerm_role_assignment").values()
        if "azurerm_client_config.current.object_id" in str(b["principal_id"])
        and str(b["scope"]).strip('"') == "${azurerm_storage_container.store.id}"
    ]
    roles = {str(g["role_definition_name"]).strip('"') for g in grants}
    assert roles == {"Storage Blob Data Contributor"}, roles
    assert VERSIONS.startswith("deployments/")


def test_the_api_key_is_generated_never_a_literal() -> None:
    secret = resources("azure", "azurerm_key_vault_secret")["api_key"]
    assert "value" not in secret  # no literal seed such as "set-after-deploy"
    assert str(secret["value_wo"]).strip('"') == "${ephemeral.random_password.api_key.result}"
    text = "".join(p.read_text() for p in sorted((MODULES / "azure").glob("*.tf")))
    block = re.search(r'ephemeral "random_password" "api_key" \{(.*?)\n\}', text, re.S)
    assert block and int(re.search(r"length\s*=\s*(\d+)", block.group(1)).group(1)) >= 32  # type: ignore[union-attr]


class RefusedUntilRoleApplies:
    """A blob store refusing with HTTP 403 (what the Azure SDK raises before the deployer's
    new role assignment reaches the data plane) for its first ``refusals`` reads."""

    def __init__(self, refusals: int) -> None:
        from agentfn.testing import MemoryBlobStore

        self.inner = MemoryBlobStore()
        self.refusals = refusals

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, key: str) -> Any:
        if self.refusals:
            self.refusals -= 1
            error = RuntimeError("AuthorizationPermissionMismatch")
            error.status_code = 403  # type: ignore[attr-defined]
            raise error
        return self.inner.get(key)


def test_the_version_record_waits_for_the_new_role(tmp_path: Any) -> None:
    from agentfn.functions.local.deploy import record_when_allowed

    archive = tmp_path / "a.zip"
    archive.write_bytes(b"zip")
    slept: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    store = RefusedUntilRoleApplies(refusals=2)
    entry = record_when_allowed(
        store, "azure", archive, "ab" * 32, sleep=sleep, clock=lambda: now[0]
    )  # type: ignore[arg-type]
    assert entry.number == 1 and slept == [5.0, 10.0]
    # It gives up once the role has had its time, and elsewhere a 403 is an error at once.
    with pytest.raises(RuntimeError, match="AuthorizationPermissionMismatch"):
        record_when_allowed(
            RefusedUntilRoleApplies(refusals=1000), "azure", archive, "cd" * 32,  # type: ignore[arg-type]
            sleep=sleep, clock=lambda: now[0],
        )  # fmt: skip
    assert sum(slept) <= 600 + 60
    with pytest.raises(RuntimeError):
        record_when_allowed(RefusedUntilRoleApplies(refusals=1), "aws", archive, "ef" * 32)  # type: ignore[arg-type]
