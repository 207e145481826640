"""The boto3 client factory every AWS adapter uses, so all of them share one configuration.

It lived in the S3 module and the SQS and Secrets Manager adapters imported it from there;
none of it is about S3. Imported only by the AWS adapter modules, which import boto3 anyway.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError

from agentfn.errors import ConfigError

__all__ = ["make_client"]


def make_client(service: str) -> Any:
    """A boto3 client from the standard environment (AWS_ENDPOINT_URL, AWS_REGION, keys...)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=16,
    )
    try:
        return boto3.client(service, config=config)
    except NoRegionError:
        raise ConfigError(
            f"no AWS region for {service}: set AWS_REGION or AWS_DEFAULT_REGION", field="region"
        ) from None
