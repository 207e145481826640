"""Apache Libcloud adapters: a BlobStore on any Libcloud storage driver."""

from agentfn.adapters.libcloud.blobstore import LibcloudBlobStore

__all__ = ["LibcloudBlobStore"]
