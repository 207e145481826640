"""AWS adapters on boto3: S3 blobs, SQS queue, Secrets Manager secrets.

Clients come from boto3's standard environment (``AWS_REGION``/``AWS_DEFAULT_REGION``,
credentials chain, ``AWS_ENDPOINT_URL`` for emulators), so the same code runs in Lambda, on a
laptop and against moto.
"""

from agentfn.adapters.aws.s3 import S3BlobStore
from agentfn.adapters.aws.secrets_manager import SecretsManagerStore
from agentfn.adapters.aws.sqs import SqsQueue

__all__ = ["S3BlobStore", "SecretsManagerStore", "SqsQueue"]
