"""SQLite connections for the local adapters: one per thread and process, WAL, a stated fsync
policy, write transactions that take the lock up front, and batches that commit many writes
at once.

Shared by the queue and the blob store, which may live in one file: adapters opening the same
file share one ``Connections`` (``connections``; at the stronger fsync policy either asks),
so a batch covers the writes of both, and a step's result, its run's advance, the next job
and the ack are one commit (one fsync). SQLite's own locking makes them safe across processes; a
connection per thread makes them safe across threads; connections are rebuilt after
``fork`` (never touching the parent's handles).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
import weakref
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
# Weak: a file's connections close when the last adapter using them goes.
_SHARED: weakref.WeakValueDictionary[str, Connections] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def connections(path: Path, schema: str, synchronous: Synchronous) -> Connections:
    """The process's connections to ``path``, with ``schema`` applied: one object per file,
    so adapters on one file share its transactions (two connections of one thread to one
    file would wait for each other's write lock). Adapters asking different fsync policies
    of one file both get the stronger."""
    policy = check_synchronous(synchronous)
    key = str(path.resolve())
    with _SHARED_LOCK:
        conns = _SHARED.get(key)
        if conns is None:
            conns = _SHARED[key] = Connections(path, policy)
    conns.require(schema, policy)
    return conns


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


class _Thread(threading.local):
    conn: sqlite3.Connection | None = None
    synchronous: Synchronous | None = None  # what ``conn`` was set to
    depth = 0  # batches entered and not left
    after: list[Callable[[], None]]

    def __init__(self) -> None:
        self.after = []


class Connections:
    """This thread's connection to ``path``, opened on first use with every schema applied."""

    def __init__(self, path: Path, synchronous: Synchronous) -> None:
        self.path = path
        self.synchronous = check_synchronous(synchronous)
        self._schemas: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._local = _Thread()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.pid = os.getpid()
        self._applied = 0  # how many of ``_schemas`` the database has

    def require(self, schema: str, synchronous: Synchronous) -> None:
        """Apply ``schema`` too, and fsync at least as ``synchronous`` says."""
        with self._lock:
            if schema not in self._schemas:
                self._schemas.append(schema)
            if synchronous == "full":
                self.synchronous = "full"

    def get(self) -> sqlite3.Connection:
        if os.getpid() != self.pid:
            # Inherited across fork: never touch (or close) the parent's handles; start over.
            # The old objects are kept alive on purpose so their finalizers never run here.
            _ABANDONED.append((self._local, self._conns))
            self._reset()
        conn = self._local.conn
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        if self._local.synchronous != self.synchronous and not conn.in_transaction:
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            self._local.synchronous = self.synchronous
        if self._applied < len(self._schemas):
            with self._lock:
                pending = self._schemas[self._applied :]
                for schema in pending:
                    retry_locked(functools.partial(self._create_schema, conn, schema))
                self._applied += len(pending)
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
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection, schema: str) -> None:
        statements = [s.strip() for s in schema.split(";") if s.strip()]
        if conn.in_transaction:  # an adapter first used inside another's batch
            for stmt in statements:
                conn.execute(stmt)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements:
                conn.execute(stmt)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from the start, so reads inside it
        are current and a conditional write is decided by what they saw.

        Inside a batch it is a savepoint of the batch's transaction: it commits with the
        batch, and if it fails it undoes only itself (the batch goes on)."""
        db = self.get()
        if self._local.depth:
            db.execute("SAVEPOINT write")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
                raise
            db.execute("RELEASE write")
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write this thread makes inside, through any adapter
        sharing these connections: one commit (one fsync) for all, or none if it raises.
        It holds the write lock throughout, so keep what runs inside short."""
        state = self._local
        db = self.get()
        if state.depth:  # nested (two adapters on one file): the outer batch commits
            state.depth += 1
            try:
                yield
            finally:
                state.depth -= 1
            return
        db.execute("BEGIN IMMEDIATE")
        state.depth = 1
        try:
            yield
        except BaseException:
            state.depth, state.after = 0, []
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        state.depth = 0
        db.execute("COMMIT")
        after, state.after = state.after, []
        failure: BaseException | None = None
        for fn in after:  # each runs, whatever an earlier one raised
            try:
                fn()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once what this thread wrote is committed: now, or when its batch is."""
        if self._local.depth:
            if fn not in self._local.after:  # ten sends ring once
                self._local.after.append(fn)
        else:
            fn()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees one commit, and no writer waits.
        Inside a batch, the batch's transaction is that snapshot."""
        db = self.get()
        if self._local.depth:
            yield db
            return
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
        self._local = _Thread()
        self._applied = 0  # the file may be new when they reopen
