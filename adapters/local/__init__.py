"""Local adapters: filesystem or SQLite blobs, SQLite queue, environment/.env secrets."""

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.local.filesystem import FileBlobStore
from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue

__all__ = ["EnvSecretStore", "FileBlobStore", "SqliteBlobStore", "SqliteQueue"]
