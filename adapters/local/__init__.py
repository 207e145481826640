"""Local adapters: filesystem blobs, SQLite queue, environment/.env secrets."""

from adapters.local.env_secrets import EnvSecretStore
from adapters.local.filesystem import FileBlobStore
from adapters.local.sqlite_queue import SqliteQueue

__all__ = ["EnvSecretStore", "FileBlobStore", "SqliteQueue"]
