"""The Azure stack grants exactly the "Who calls what" table of docs/deploy/azure.md.

Both ways: every row is a role assignment at exactly the row's scope, and every role
assignment (and Key Vault access) of the stack is a row. A grant at the storage account,
resource group or subscription where a container or queue fits is a failure, as is any
Key Vault access policy (the vault is RBAC only).

The Azure OpenAI grants are on an account the stack does not own (``var.openai_account``,
written so in the table): switched on by that variable (``count``, absent by default, as
``terraform console`` evaluates it), their row's Calls say "only when `openai_account` is
set", and the variable's validation refuses any id but one Cognitive Services account's.
"""

from __future__ import annotations

import re

import pytest

from tests.support.stacks import (
    check_switched_grants,
    hcl_text,
    permission_table,
    resources,
    terraform_value,
)

# Who each table identity is in the stack: the principal its role assignments name.
PRINCIPALS = {
    "http": "${azurerm_linux_function_app.http.identity[0].principal_id}",
    "worker": "${azurerm_linux_function_app.worker.identity[0].principal_id}",
    "deployer": "${data.azurerm_client_config.current.object_id}",
}
# Scopes no row may use: they reach every container, queue or vault below them.
BROAD = re.compile(r"azurerm_(storage_account|resource_group|subscription)\.|subscriptions/")
# The built-in role that lets an identity call an Azure OpenAI account's deployments (and
# nothing else: no keys, no management).
OPENAI_ROLE = "Cognitive Services OpenAI User"
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/models"
    "/providers/Microsoft.CognitiveServices/accounts/myacct"
)
# A value that switches on each variable-switched grant (each is off by default).
SWITCHED_ON = {
    "openai_account": f'{{id = "{ACCOUNT_ID}", endpoint = "https://myacct.openai.azure.com/"}}'
}

Grant = tuple[str, str, str]  # (identity, resource, role)


def _text(value: object) -> str:
    return str(value).strip('"')


def stack_grants() -> list[Grant]:
    return list(switched_grants())


def switched_grants() -> dict[Grant, str | None]:
    """Every role assignment, with the ``count`` that switches it (``None``: always)."""
    identities = {v: k for k, v in PRINCIPALS.items()}
    grants: dict[Grant, str | None] = {}
    for name, body in resources("azure", "azurerm_role_assignment").items():
        principal = _text(body["principal_id"])
        assert principal in identities, f"{name}: unknown principal {principal}"
        # A resource's ARM id: .id, or a Key Vault secret's .resource_versionless_id; or the
        # id of the existing Azure OpenAI account the variable names.
        scope = re.fullmatch(
            r"\$\{(azurerm_\w+\.\w+|var\.openai_account)\.(?:id|resource_versionless_id)\}",
            _text(body["scope"]),
        )
        assert scope, f"{name}: scope {body['scope']} is not one resource's id"
        assert "role_definition_id" not in body, f"{name}: name the role, as the table does"
        grant = (identities[principal], scope.group(1), _text(body["role_definition_name"]))
        assert grant not in grants, f"{grant}: granted twice"
        grants[grant] = hcl_text(body["count"]) if "count" in body else None
    return grants


def table_grants() -> list[Grant]:
    rows = permission_table("azure")
    assert rows, "docs/deploy/azure.md has an empty 'Who calls what' table"
    for row in rows:
        assert row["identity"] in PRINCIPALS, row
        assert row["calls"], f"a row must say which calls need it: {row}"
    return [(r["identity"], r["resource"], r["permission"]) for r in rows]


def test_every_row_is_granted_at_its_scope() -> None:
    missing = set(table_grants()) - set(stack_grants())
    assert not missing, f"rows the stack does not grant: {sorted(missing)}"


def test_every_grant_is_in_the_table() -> None:
    extra = set(stack_grants()) - set(table_grants())
    assert not extra, f"grants no row of docs/deploy/azure.md explains: {sorted(extra)}"


def test_no_grant_is_wider_than_a_container_queue_or_vault() -> None:
    for identity, resource, role in stack_grants():
        assert not BROAD.search(resource), f"{identity} holds {role} on {resource}"
        kind = resource.split(".")[0]
        if role.startswith("Storage Blob"):
            assert kind == "azurerm_storage_container", (identity, resource, role)
        if role.startswith("Storage Queue"):
            assert kind == "azurerm_storage_queue", (identity, resource, role)
        if role.startswith("Key Vault"):
            assert kind in {"azurerm_key_vault", "azurerm_key_vault_secret"}, (identity, role)
        if role.startswith("Cognitive Services"):
            assert (resource, role) == ("var.openai_account", OPENAI_ROLE), (identity, role)
        if resource.startswith("var."):  # an existing resource: only the account, only this
            assert (resource, role) == ("var.openai_account", OPENAI_ROLE), (identity, role)


def test_a_switched_grant_is_off_by_default_and_its_row_says_when() -> None:
    switched = {g for g, count in switched_grants().items() if count is not None}
    assert {g[0] for g in switched} == {"http", "worker"}, "the Azure OpenAI grants"
    check_switched_grants("azure", switched_grants(), SWITCHED_ON)


@pytest.mark.parametrize(
    "scope",
    [
        "/subscriptions/00000000-0000-0000-0000-000000000000",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/models",
        ACCOUNT_ID.replace("Microsoft.CognitiveServices", "Microsoft.Storage"),
        ACCOUNT_ID + "/deployments/gpt-4o-mini",
    ],
)
def test_the_openai_grant_is_on_one_account_only(scope: str) -> None:
    """The account's id is the variable's: anything wider (or another kind) is refused."""
    assert terraform_value("azure", "var.openai_account.id", SWITCHED_ON) == ACCOUNT_ID
    refused = SWITCHED_ON["openai_account"].replace(ACCOUNT_ID, scope)
    with pytest.raises(AssertionError, match="openai_account needs the account's resource id"):
        terraform_value("azure", "var.openai_account.id", {"openai_account": refused})


def test_key_vault_access_is_rbac_only() -> None:
    vaults = resources("azure", "azurerm_key_vault")
    for name, body in vaults.items():
        assert _text(body["rbac_authorization_enabled"]).lower() == "true", name
        assert "access_policy" not in body, name
    assert resources("azure", "azurerm_key_vault_access_policy") == {}


@pytest.mark.parametrize("identity", sorted(PRINCIPALS))
def test_each_identity_has_rows(identity: str) -> None:
    assert any(row[0] == identity for row in table_grants())


def test_the_trigger_runs_as_the_worker_on_the_queue_it_listens_to() -> None:
    """The queue trigger connects with the worker's identity (identity-based connection):
    it receives, deletes and updates on the work queue and moves poison messages."""
    grants = set(stack_grants())
    assert ("worker", "azurerm_storage_queue.work", "Storage Queue Data Contributor") in grants
    assert ("worker", "azurerm_storage_queue.dead_letter", "Storage Queue Data Contributor") in (
        grants
    )
