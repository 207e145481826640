"""Local adapters: filesystem blobs, SQLite queue, environment/.env secrets."""

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.local.filesystem import FileBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue

__all__ = ["EnvSecretStore", "FileBlobStore", "SqliteQueue"]
