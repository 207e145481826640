"""Apache Libcloud adapters: a BlobStore on any Libcloud storage driver."""

from adapters.libcloud.blobstore import LibcloudBlobStore

__all__ = ["LibcloudBlobStore"]
