"""Libcloud backend of the contract suite: the LOCAL storage driver in the test's tmp folder.

The spec is only paths and names, so a child process rebuilds the same store; every test gets
its own root, container and lock folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentfn.adapters.libcloud import LibcloudBlobStore
from tests.contract.harness import AdapterFactory


def _spec(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "libcloud-root"
    (root / "blobs").mkdir(parents=True)
    return {
        "driver": "local",
        "container": "blobs",
        # A prefix, so every test also checks that it is added and stripped transparently.
        "prefix": "data",
        "key": str(root),
        "lock_dir": str(tmp_path / "libcloud-locks"),
    }


BLOBSTORES = {"libcloud": AdapterFactory(spec=_spec, build=LibcloudBlobStore)}
