"""Azure adapters: Blob Storage blobs, Storage Queue jobs, Key Vault secrets.

Each adapter module imports its own SDK, so this package loads them lazily: a handler that only
opens a queue never pays for importing the blob or Key Vault clients. The helpers below are
shared by the storage adapters and import no SDK.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from agentfn.adapters._lazy import load
from agentfn.adapters._url import parse_url
from agentfn.errors import ConfigError

if TYPE_CHECKING:
    from agentfn.adapters.azure.blob import AzureBlobStore
    from agentfn.adapters.azure.key_vault import KeyVaultSecretStore
    from agentfn.adapters.azure.storage_queue import AzureStorageQueue

__all__ = ["AzureBlobStore", "AzureStorageQueue", "KeyVaultSecretStore"]

_MODULES = {
    "AzureBlobStore": "agentfn.adapters.azure.blob",
    "AzureStorageQueue": "agentfn.adapters.azure.storage_queue",
    "KeyVaultSecretStore": "agentfn.adapters.azure.key_vault",
}

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"

# Storage account names: 3-24 lowercase letters and digits.
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")


def __getattr__(name: str) -> Any:
    return load(__name__, _MODULES, name)


def connection_string() -> str | None:
    """The storage connection string from the SDK's standard variable, if one is set."""
    value = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    return value or None


def storage_url_parts(url: str, scheme: str, *, what: str) -> tuple[str | None, list[str]]:
    """Split ``scheme://[account/]name/rest`` into (account, [name, *rest segments]).

    With ``AZURE_STORAGE_CONNECTION_STRING`` set the account comes from it and the URL starts
    with the resource name, or with that same account's name (dropped); without it the first
    part names the account, reached with ``DefaultAzureCredential``. The parts are
    percent-decoded; empty ones are dropped.
    """
    if not isinstance(url, str):
        raise ConfigError(f"{what} URL must be a string", field="url")
    parsed = parse_url(url, scheme)
    parts = [unquote(p) for p in [parsed.netloc, *parsed.path.split("/")] if p]
    if not parts:
        raise ConfigError(f"{url!r} names no {what}", field="url")
    conn = connection_string()
    if conn is not None:
        # The URLs a deployment sets name their account; a connection string (an emulator's,
        # or keys instead of an identity) for that same account only changes how it is reached.
        if len(parts) > 1 and parts[0] == _account_of(conn):
            parts = parts[1:]
        return None, parts
    account = parts[0]
    if not _ACCOUNT.fullmatch(account):
        raise ConfigError(
            f"{url!r}: without {CONNECTION_STRING_ENV} the URL must start with a storage "
            f"account name (3-24 lowercase letters and digits), got {account!r}",
            field="url",
        )
    if len(parts) < 2:
        raise ConfigError(
            f"{url!r} names the account {account!r} but no {what} "
            f"(use {scheme}://<account>/<{what}>, or set {CONNECTION_STRING_ENV})",
            field="url",
        )
    return account, parts[1:]


def _account_of(conn: str) -> str | None:
    """The ``AccountName`` a connection string names, if any."""
    for part in conn.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() == "accountname":
            return value.strip()
    return None


def default_credential() -> Any:
    """``DefaultAzureCredential`` (managed identity, workload identity, env, CLI...)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
