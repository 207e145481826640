"""AWS adapters on boto3: S3 blobs, SQS queue, Secrets Manager secrets.

Clients come from boto3's standard environment (``AWS_REGION``/``AWS_DEFAULT_REGION``,
credentials chain, ``AWS_ENDPOINT_URL`` for emulators), so the same code runs in Lambda, on a
laptop and against moto. Each class is imported on first access, so importing this package
imports no boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentfn.adapters._lazy import load

if TYPE_CHECKING:
    from agentfn.adapters.aws.s3 import S3BlobStore
    from agentfn.adapters.aws.secrets_manager import SecretsManagerStore
    from agentfn.adapters.aws.sqs import SqsQueue

__all__ = ["S3BlobStore", "SecretsManagerStore", "SqsQueue"]

_MODULES = {
    "S3BlobStore": "agentfn.adapters.aws.s3",
    "SecretsManagerStore": "agentfn.adapters.aws.secrets_manager",
    "SqsQueue": "agentfn.adapters.aws.sqs",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _MODULES, name)
