"""BlobStore in one SQLite file: the local default's fast, durable store.

One row per key in a WAL database. A conditional write is one statement inside a write
transaction, so racing writers (threads or processes) are decided by SQLite's lock: no temp
files, no renames, no lock files. Objects written with ``upload`` are kept in 1 MiB chunks
so neither ``upload`` nor ``download`` holds a whole object in memory.

Durability is the ``synchronous`` setting (``agentfn.adapters.local._sqlite``): ``normal``
(the default, as for the SQLite queue) keeps every commit through a crash of the process and
fsyncs at checkpoints, so a power cut may roll back the last commits but never corrupts the
database; ``full`` fsyncs every commit, so a step recorded is a step kept through a power
cut, at a few milliseconds a step (docs/benchmarks.md).

Etags are content hashes, as on S3 and in the file store: rewriting identical bytes keeps
the etag. A key and keys below it ("a" and "a/b") may coexist, as on every cloud store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from agentfn.adapters.local._sqlite import Synchronous, check_synchronous, connections
from agentfn.blob_args import (
    as_bytes,
    bare_etag,
    check_etag,
    check_listing,
    content_etag,
    content_hash,
    page_of,
)
from agentfn.errors import NotFound, PreconditionFailed
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, Page

__all__ = ["SqliteBlobStore"]

# ``data`` holds a small object whole; an uploaded one has ``data`` NULL and its bytes in
# ``chunks``. Keys compare as bytes (BINARY collation), which for UTF-8 is code point order:
# the lexicographic order the BlobStore contract lists in.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    key  TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    data BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    key  TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID
"""


def _etag(data: bytes) -> str:
    return content_etag(content_hash(data))


def _key(value: object) -> str:
    check_path(value, "key", allow_empty=False)
    assert isinstance(value, str)
    return value


def _upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None: none)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


class SqliteBlobStore:
    """Objects as rows of one SQLite database at ``path``."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "normal") -> None:
        self.path = Path(path)
        self.synchronous = check_synchronous(synchronous)
        self._db = connections(self.path, _SCHEMA, self.synchronous)

    def __repr__(self) -> str:
        return f"SqliteBlobStore(path={str(self.path)!r}, synchronous={self.synchronous!r})"

    # Pickling rebuilds connections on the other side (spawned workers get a working store).
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "synchronous": self.synchronous}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], synchronous=state["synchronous"])  # type: ignore[misc]

    def batch(self) -> AbstractContextManager[None]:
        """The Batching port: the writes made inside (and those of any adapter on this file
        with the same ``synchronous``) commit together, once."""
        return self._db.batch()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """The Batching port: ``fn`` runs once what this thread wrote here is committed."""
        self._db.after_commit(fn)

    def close(self) -> None:
        """Close this process's connections; the store reconnects if used again."""
        self._db.close()

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        key = _key(key)
        db = self._db.get()
        row = db.execute("SELECT etag, data FROM blobs WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"blob {key!r} not found")
        etag, data = row
        if data is None:  # uploaded in chunks: read them in one snapshot
            with self._db.snapshot() as tx:
                row = tx.execute("SELECT etag FROM blobs WHERE key = ?", (key,)).fetchone()
                if row is None:
                    raise NotFound(f"blob {key!r} not found")
                etag = row[0]
                parts = tx.execute(
                    "SELECT data FROM chunks WHERE key = ? ORDER BY seq", (key,)
                ).fetchall()
            data = b"".join(p[0] for p in parts)
        return Blob(key=key, data=bytes(data), etag=etag)

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        check_path(prefix, "prefix", allow_empty=True)
        check_listing(cursor, limit)
        clauses, args = ["key >= ?"], [prefix]
        upper = _upper_bound(prefix)
        if upper is not None:
            clauses.append("key < ?")
            args.append(upper)
        if cursor is not None:
            clauses.append("key > ?")
            args.append(cursor)
        sql = f"SELECT key FROM blobs WHERE {' AND '.join(clauses)} ORDER BY key LIMIT ?"
        rows = self._db.get().execute(sql, (*args, limit + 1)).fetchall()
        return page_of([r[0] for r in rows], limit)

    def download(self, key: str, sink: BinaryIO) -> str:
        key = _key(key)
        digest = content_hash()
        with self._db.snapshot() as db:  # a concurrent rewrite is never mixed in
            row = db.execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise NotFound(f"blob {key!r} not found")
            if row[0] is not None:
                digest.update(row[0])
                sink.write(row[0])
            else:
                for (part,) in db.execute(
                    "SELECT data FROM chunks WHERE key = ? ORDER BY seq", (key,)
                ):
                    digest.update(part)
                    sink.write(part)
        return content_etag(digest)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        key, data = _key(key), as_bytes(data)
        etag = _etag(data)
        with self._db.tx() as db:
            db.execute("DELETE FROM chunks WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO blobs (key, etag, data) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, data = excluded.data",
                (key, etag, data),
            )
        return etag

    def put_if_absent(self, key: str, data: bytes) -> str:
        key, data = _key(key), as_bytes(data)
        etag = _etag(data)
        try:
            with self._db.tx() as db:
                db.execute(
                    "INSERT INTO blobs (key, etag, data) VALUES (?, ?, ?)", (key, etag, data)
                )
        except sqlite3.IntegrityError:
            raise PreconditionFailed(f"blob {key!r} already exists") from None
        return etag

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        key, data = _key(key), as_bytes(data)
        expected = '"' + bare_etag(check_etag(etag)) + '"'
        new = _etag(data)
        with self._db.tx() as db:
            changed = db.execute(
                "UPDATE blobs SET etag = ?, data = ? WHERE key = ? AND etag = ?",
                (new, data, key, expected),
            ).rowcount
            if changed == 0:
                exists = db.execute("SELECT 1 FROM blobs WHERE key = ?", (key,)).fetchone()
                if exists is None:
                    raise PreconditionFailed(f"blob {key!r} does not exist")
                raise PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
            db.execute("DELETE FROM chunks WHERE key = ?", (key,))
        return new

    def delete(self, key: str) -> None:
        key = _key(key)
        with self._db.tx() as db:
            db.execute("DELETE FROM blobs WHERE key = ?", (key,))
            db.execute("DELETE FROM chunks WHERE key = ?", (key,))

    def upload(self, key: str, stream: BinaryIO) -> str:
        key = _key(key)
        digest = content_hash()
        with self._db.tx() as db:  # readers see the old object until the commit
            db.execute("DELETE FROM chunks WHERE key = ?", (key,))
            seq = 0
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                db.execute(
                    "INSERT INTO chunks (key, seq, data) VALUES (?, ?, ?)",
                    (key, seq, bytes(chunk)),
                )
                seq += 1
            etag = content_etag(digest)
            db.execute(
                "INSERT INTO blobs (key, etag, data) VALUES (?, ?, NULL)"
                " ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, data = NULL",
                (key, etag),
            )
        return etag
