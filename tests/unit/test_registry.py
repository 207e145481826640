"""Adapter selection by URL: the right adapter per scheme, clear errors otherwise."""

from __future__ import annotations

import builtins
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters import registry
from agentfn.adapters.local import EnvSecretStore, FileBlobStore, SqliteBlobStore, SqliteQueue
from agentfn.errors import ConfigError


def test_local_schemes(tmp_path: Path) -> None:
    assert isinstance(registry.open_blobstore((tmp_path / "s").as_uri()), FileBlobStore)
    assert isinstance(registry.open_queue(f"sqlite://{tmp_path / 'q.db'}"), SqliteQueue)
    assert isinstance(registry.open_secrets("env://"), EnvSecretStore)


def test_sqlite_urls_carry_their_fsync_policy(tmp_path: Path) -> None:
    store = registry.open_blobstore(f"sqlite://{tmp_path / 'b.db'}")
    assert isinstance(store, SqliteBlobStore) and store.synchronous == "normal"
    store = registry.open_blobstore(f"sqlite://{tmp_path / 'b.db'}?synchronous=full")
    assert isinstance(store, SqliteBlobStore) and store.synchronous == "full"
    queue = registry.open_queue(f"sqlite://{tmp_path / 'q.db'}")
    assert isinstance(queue, SqliteQueue) and queue.synchronous == "normal"
    queue = registry.open_queue(f"sqlite://{tmp_path / 'q.db'}?synchronous=full")
    assert isinstance(queue, SqliteQueue) and queue.synchronous == "full"
    store.put("k", b"v")  # the path is the path, the option is not part of it
    assert (tmp_path / "b.db").exists()


@pytest.mark.parametrize(
    ("query", "problem"),
    [("synchronous=off", "synchronous must be one of full, normal"), ("mode=ro", "'mode'")],
)
def test_a_bad_sqlite_option_is_refused(tmp_path: Path, query: str, problem: str) -> None:
    for opener in (registry.open_blobstore, registry.open_queue):
        with pytest.raises(ConfigError) as caught:
            opener(f"sqlite://{tmp_path / 'x.db'}?{query}")
        assert problem in caught.value.message and caught.value.field == "url"


@pytest.mark.parametrize(
    ("opener", "url", "cls"),
    [
        (registry.open_blobstore, "s3://bucket/prefix", "S3BlobStore"),
        (registry.open_blobstore, "gs://bucket/prefix", "GcsBlobStore"),
        (registry.open_queue, "sqs://jobs", "SqsQueue"),
        (registry.open_queue, "pubsub://project/topic", "PubSubQueue"),
        (registry.open_secrets, "aws-sm://stack/", "SecretsManagerStore"),
        (registry.open_secrets, "gcp-sm://project", "GcpSecretManagerStore"),
        (registry.open_secrets, "keyvault://my-vault", "KeyVaultSecretStore"),
    ],
)
def test_cloud_schemes_pick_their_adapter(
    opener: Any, url: str, cls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert type(opener(url)).__name__ == cls


@pytest.mark.parametrize(
    ("opener", "url", "message"),
    [
        (registry.open_blobstore, "ftp://host/x", "unknown storage URL scheme 'ftp://'"),
        (registry.open_queue, "kafka://broker/topic", "unknown queue URL scheme 'kafka://'"),
        (registry.open_secrets, "vault://x", "unknown secrets URL scheme 'vault://'"),
        (registry.open_queue, "jobs", "must look like scheme://"),
    ],
)
def test_unknown_schemes_are_named(opener: Any, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        opener(url)
    assert "supported:" in caught.value.message or "scheme://" in caught.value.message


def test_libcloud_scheme(tmp_path: Path) -> None:
    store = registry.open_blobstore(f"libcloud+local://box/prefix?root={tmp_path}&create=true")
    assert type(store).__name__ == "LibcloudBlobStore"


def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    real_import = builtins.__import__

    def no_aws_sdk(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("boto3", "botocore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
        return real_import(name, *args, **kwargs)

    for module in list(sys.modules):
        if module.split(".")[0] in ("boto3", "botocore") or module.startswith(
            "agentfn.adapters.aws"
        ):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_aws_sdk)
    with pytest.raises(ConfigError, match=r"needs the aws extra \(pip install 'agentfn\[aws\]'\)"):
        registry.open_queue("sqs://jobs")


def test_importing_the_adapter_packages_imports_no_sdk() -> None:
    """A handler pays only for the SDK it uses: the packages and the registry import none."""
    code = (
        "import sys\n"
        "import agentfn.adapters.registry, agentfn.adapters.aws, agentfn.adapters.gcp\n"
        "import agentfn.adapters.azure, agentfn.adapters.local\n"
        "sdks = ('boto3', 'botocore', 'azure', 'libcloud', 'openai')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in sdks\n"
        "             or m.startswith(('google.cloud.', 'google.api_core'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
