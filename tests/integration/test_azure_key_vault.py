"""KeyVaultSecretStore specifics, against the local Key Vault REST server."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from agentfn.adapters.azure.key_vault import KeyVaultSecretStore
from agentfn.errors import ConfigError, InternalError, NotFound, UserError
from tests.contract.harness import FakeClock
from tests.support.fake_key_vault import (
    RESOURCE,
    TENANT,
    FakeKeyVault,
    TestCredential,
    ensure_fake_key_vault,
)
from tests.support.logs import debug_logging

VALUE = "kv-s3cr3t-do-not-leak"


@pytest.fixture
def vault() -> FakeKeyVault:
    v = ensure_fake_key_vault()
    v.reset()
    return v


def store(vault: FakeKeyVault, **options: Any) -> KeyVaultSecretStore:
    options.setdefault("credential", vault.credential())
    return KeyVaultSecretStore(vault.url, connection_verify=str(vault.ca_path), **options)


def raw_get(vault: FakeKeyVault, path: str, token: str | None = None) -> tuple[int, Any, Any]:
    """A plain HTTPS call, to pin down the protocol the fake speaks."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{vault.url}{path}", headers=headers)
    context = ssl.create_default_context(cafile=str(vault.ca_path))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


# --------------------------------------------------------------------------- the fake server


def test_fake_vault_speaks_the_challenge_protocol(vault: FakeKeyVault) -> None:
    status, headers, body = raw_get(vault, "/secrets/anything?api-version=7.6")
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="{RESOURCE}"'
    )
    assert body["error"]["code"] == "Unauthorized"
    token = TestCredential().token
    status, _, body = raw_get(vault, "/secrets/anything?api-version=7.6", token)
    assert (status, body["error"]["code"]) == (404, "SecretNotFound")
    status, _, body = raw_get(vault, "/secrets/anything", token)
    assert (status, body["error"]["code"]) == (400, "BadParameter")
    version = vault.set_secret("anything", "v")
    status, _, body = raw_get(vault, f"/secrets/anything/{version}?api-version=7.6", token)
    assert status == 200 and body["value"] == "v"
    assert body["id"].endswith(f"/secrets/anything/{version}")
    assert body["attributes"]["enabled"] is True


# --------------------------------------------------------------------------- the adapter


def test_the_sdk_answers_the_challenge_with_a_token_for_the_vault(vault: FakeKeyVault) -> None:
    vault.set_secret("API-KEY", VALUE)
    credential = TestCredential()
    assert store(vault, credential=credential).get("API_KEY") == VALUE
    assert credential.requests == [((f"{RESOURCE}/.default",), TENANT)]


def test_a_rejected_token_is_a_config_error(vault: FakeKeyVault) -> None:
    vault.set_secret("API-KEY", VALUE)
    s = store(vault, credential=TestCredential(token="wrong-token"))
    with pytest.raises(ConfigError, match="denied reading secret 'API_KEY'") as info:
        s.get("API_KEY")
    assert info.value.field == "secrets"
    assert VALUE not in str(info.value)


def test_names_map_underscores_and_ignore_case(vault: FakeKeyVault) -> None:
    vault.set_secret("Agentfn-Api-Key", VALUE)
    s = store(vault)
    assert s.get("AGENTFN_API_KEY") == VALUE
    assert s.get("agentfn-api-key") == VALUE
    with pytest.raises(NotFound, match=r"'OTHER_KEY' not found .* \(as 'OTHER-KEY'\)"):
        s.get("OTHER_KEY")


@pytest.mark.parametrize("name", ["", "a=b", "a\x00", "dotted.name", "spa ce", "x" * 128, "ü"])
def test_names_key_vault_cannot_hold_are_rejected(vault: FakeKeyVault, name: str) -> None:
    with pytest.raises(UserError) as info:
        store(vault).get(name)
    assert info.value.field == "name"


def test_a_disabled_secret_is_not_found(vault: FakeKeyVault) -> None:
    vault.set_secret("OLD", VALUE, enabled=False)
    with pytest.raises(NotFound, match="disabled") as info:
        store(vault).get("OLD")
    assert VALUE not in str(info.value)


def test_misses_are_not_cached_and_clear_forgets(vault: FakeKeyVault) -> None:
    clock = FakeClock()
    s = store(vault, clock=clock)
    with pytest.raises(NotFound):
        s.get("LATE")
    vault.set_secret("LATE", "1")
    assert s.get("LATE") == "1"
    vault.set_secret("LATE", "2")
    assert s.get("LATE") == "1"
    s.clear()
    assert s.get("LATE") == "2"
    assert repr(s) == f"KeyVaultSecretStore(vault_url='{vault.url}', cached=1)"


def test_ttl_zero_always_reads_the_vault(vault: FakeKeyVault) -> None:
    s = store(vault, ttl_s=0)
    vault.set_secret("T", "a")
    assert s.get("T") == "a"
    vault.set_secret("T", "b")
    assert s.get("T") == "b"
    with pytest.raises(ConfigError) as info:
        store(vault, ttl_s=-1)
    assert info.value.field == "ttl_s"


def test_the_challenge_resource_check_is_on_away_from_loopback(vault: FakeKeyVault) -> None:
    vault.set_secret("K", VALUE)
    # Forced on, the SDK's check fails: 127.0.0.1 is not under vault.azure.net.
    strict = store(vault, verify_challenge_resource=True)
    with pytest.raises(ConfigError, match="challenge") as info:
        strict.get("K")
    assert VALUE not in str(info.value)
    # "localhost" is loopback too, and the certificate covers it.
    port = vault.url.rsplit(":", 1)[1]
    local = KeyVaultSecretStore(
        f"https://localhost:{port}",
        credential=vault.credential(),
        connection_verify=str(vault.ca_path),
    )
    assert local.get("K") == VALUE


def test_the_certificate_is_checked(vault: FakeKeyVault) -> None:
    vault.set_secret("K", VALUE)
    s = KeyVaultSecretStore(vault.url, credential=vault.credential())  # system CAs only
    with pytest.raises(InternalError, match="TLS certificate is not trusted"):
        s.get("K")


def test_values_stay_out_of_sdk_logs(vault: FakeKeyVault, caplog: pytest.LogCaptureFixture) -> None:
    debug_logging(caplog)
    vault.set_secret("DB-PASSWORD", VALUE)
    assert store(vault).get("DB_PASSWORD") == VALUE
    assert any(r.name.startswith("azure") for r in caplog.records)  # the SDK did log
    assert VALUE not in caplog.text
    assert all(VALUE not in str(r.args) for r in caplog.records)


# --------------------------------------------------------------------------- URLs


def test_from_url_public_vault_name() -> None:
    s = KeyVaultSecretStore.from_url("keyvault://My-Vault-01", credential=TestCredential())
    assert s.vault_url == "https://my-vault-01.vault.azure.net"


def test_from_url_custom_endpoint(vault: FakeKeyVault) -> None:
    vault.set_secret("K", VALUE)
    url = "keyvault+" + vault.url + "/"
    s = KeyVaultSecretStore.from_url(
        url, credential=vault.credential(), connection_verify=str(vault.ca_path), ttl_s=5
    )
    assert s.vault_url == vault.url and s.ttl_s == 5
    assert s.get("K") == VALUE


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("env://", "not a keyvault://"),
        ("keyvault://", "invalid vault name"),
        ("keyvault://ab", "invalid vault name"),
        ("keyvault://1vault", "invalid vault name"),
        ("keyvault://my--vault", "invalid vault name"),
        ("keyvault://my_vault", "invalid vault name"),
        ("keyvault://vault/secrets", "expected keyvault://"),
        ("keyvault+https://", "not an https:// vault URL"),
        ("keyvault+https://host/path", "bare origin"),
        ("keyvault+https://host?x=1", "bare origin"),
        ("keyvault+https://user:pw@host", "credentials"),
        ("keyvault+https://host:99999", "invalid port"),
        ("keyvault+http://host", "not a keyvault://"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        KeyVaultSecretStore.from_url(url, credential=TestCredential())
    assert info.value.field == "url"


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown KeyVaultSecretStore options"):
        KeyVaultSecretStore.from_url("keyvault://my-vault", retries=3)
