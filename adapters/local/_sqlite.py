"""SQLite connections for the local adapters: one per thread and process, WAL, a stated fsync
policy, and write transactions that take the lock up front.

Shared by the queue and the blob store, which may live in one file: SQLite's own locking
makes them safe across processes; a connection per thread makes them safe across threads;
connections are rebuilt after ``fork`` (never touching the parent's handles).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from agentfn.errors import UserError

BUSY_TIMEOUT_MS = 30_000

# What a commit waits for. "full": the WAL is fsynced on every commit, so a committed write
# survives a power cut (DBOS's and LangGraph's SQLite defaults do as much). "normal": no
# fsync per commit; a committed write survives the process dying, and the last commits may
# roll back if the machine loses power.
Synchronous = Literal["full", "normal"]
SYNCHRONOUS: tuple[Synchronous, ...] = ("full", "normal")

_ABANDONED: list[object] = []  # connections inherited across fork: kept, never closed here


def check_synchronous(value: object) -> Synchronous:
    if value not in SYNCHRONOUS:
        raise UserError(
            f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {value!r}",
            field="synchronous",
        )
    return value


def retry_locked(fn: Callable[[], object]) -> None:
    """Run a setup statement, retrying "database is locked".

    Switching a fresh file to WAL can fail with SQLITE_BUSY without consulting the busy
    handler when several processes open it at once, so ``busy_timeout`` alone is not enough.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class Connections:
    """This thread's connection to ``path``, opened on first use with ``schema`` applied."""

    def __init__(self, path: Path, schema: str, synchronous: Synchronous) -> None:
        self.path = path
        self.schema = schema
        self.synchronous = check_synchronous(synchronous)
        self._reset()

    def _reset(self) -> None:
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.pid = os.getpid()
        self._schema_ready = False

    def get(self) -> sqlite3.Connection:
        if os.getpid() != self.pid:
            # Inherited across fork: never touch (or close) the parent's handles; start over.
            # The old objects are kept alive on purpose so their finalizers never run here.
            _ABANDONED.append((self._local, self._conns))
            self._reset()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # only so close() may run on another thread
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        if not self._schema_ready:
            retry_locked(lambda: self._create_schema(conn))
            self._schema_ready = True
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in filter(None, (s.strip() for s in self.schema.split(";"))):
                conn.execute(stmt)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from the start, so reads inside it
        are current and a conditional write is decided by what they saw."""
        db = self.get()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees one commit, and no writer waits."""
        db = self.get()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        """Close this process's connections; they reopen if used again."""
        with self._lock:
            conns, self._conns = self._conns, []
        if self.pid == os.getpid():
            for conn in conns:
                conn.close()
        self._local = threading.local()
