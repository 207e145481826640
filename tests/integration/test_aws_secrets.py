"""SecretsManagerStore specifics on moto's server: prefixes, URLs, binary and deleted secrets."""

from __future__ import annotations

import uuid

import boto3
import pytest

from agentfn.adapters.aws.secrets_manager import SecretsManagerStore
from agentfn.errors import ConfigError, NotFound, UserError
from tests.support.emulators.aws import ensure_moto
from tests.support.logs import debug_logging

VALUE = "unit-s3cr3t-never-logged"


@pytest.fixture
def prefix() -> str:
    ensure_moto()
    return f"unit/{uuid.uuid4().hex[:10]}/"


def test_url_prefix_names_the_secret(prefix: str) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=f"{prefix}API_KEY", SecretString=VALUE)
    store = SecretsManagerStore.from_url(f"aws-sm://{prefix}")
    assert store.get("API_KEY") == VALUE
    assert repr(store) == f"SecretsManagerStore(prefix={prefix!r}, cached=1)"
    store.clear()
    assert "cached=0" in repr(store)
    assert SecretsManagerStore.from_url("aws-sm://").prefix == ""


def test_binary_secrets_are_utf8_text(prefix: str) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=f"{prefix}BIN", SecretBinary=VALUE.encode())
    assert SecretsManagerStore(prefix).get("BIN") == VALUE


def test_deleted_secret_is_not_found_and_misses_are_not_cached(prefix: str) -> None:
    sm = boto3.client("secretsmanager")
    store = SecretsManagerStore(prefix, ttl_s=3600)
    with pytest.raises(NotFound):
        store.get("LATE")
    sm.create_secret(Name=f"{prefix}LATE", SecretString=VALUE)
    assert store.get("LATE") == VALUE
    sm.delete_secret(SecretId=f"{prefix}LATE")  # recoverable for a while: still gone to us
    store.clear()
    with pytest.raises(NotFound):
        store.get("LATE")


def test_boto_debug_logs_do_not_carry_the_value(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    debug_logging(caplog)
    boto3.client("secretsmanager").create_secret(Name=f"{prefix}K", SecretString=VALUE)
    assert SecretsManagerStore(prefix).get("K") == VALUE
    assert "Response body" in caplog.text  # botocore did log the exchange...
    assert VALUE not in caplog.text  # ...without the value


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "x" * 600])
def test_bad_names(prefix: str, name: str) -> None:
    with pytest.raises(UserError) as info:
        SecretsManagerStore(prefix).get(name)
    assert info.value.field == "name"


@pytest.mark.parametrize("url", ["aws-sm://bad prefix/", "env://x", "aws-sm://p/?v=1"])
def test_bad_urls(url: str) -> None:
    ensure_moto()
    with pytest.raises(ConfigError) as info:
        SecretsManagerStore.from_url(url)
    assert info.value.field == "url"


def test_bad_ttl() -> None:
    ensure_moto()
    with pytest.raises(ConfigError) as info:
        SecretsManagerStore(ttl_s=-1)
    assert info.value.field == "ttl_s"
