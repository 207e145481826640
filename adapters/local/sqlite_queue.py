"""Queue on a SQLite file: durable, multi-process safe, no server to run.

``receive`` claims jobs inside ``BEGIN IMMEDIATE`` so two processes can never claim the same
visible job; WAL mode lets readers proceed while one writer holds the lock. A receive that
finds nothing visible takes no write lock.

Idle workers sleep on a doorbell instead of polling: a FIFO beside the database
(``<file>.wake``). ``send`` and ``retry`` write a byte to it; ``wait`` blocks on it until
then, or until the earliest hidden or delayed job falls due, so a new job is picked up at
once and an idle worker costs nothing. Where FIFOs are unavailable, ``wait`` polls.
"""

from __future__ import annotations

import errno
import json
import os
import select
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

from agentfn.adapters.local._sqlite import Synchronous, check_synchronous, connections
from agentfn.errors import UserError
from agentfn.ports import DeadLetter, QueueMessage
from agentfn.queue_args import (
    check_limit,
    check_max_attempts,
    check_max_messages,
    check_priority,
    encode_body,
    seconds,
)

__all__ = ["SqliteQueue"]

_MAX_RECEIVE = 100
_POLL_S = 0.05  # how often ``wait`` looks where no doorbell can be made

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    queue      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    priority   INTEGER NOT NULL DEFAULT 0,
    visible_at REAL    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    receipt    TEXT,
    created_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, priority);
CREATE TABLE IF NOT EXISTS dead_letters (
    id        TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    failed_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue);
"""


class SqliteQueue:
    """At-least-once queue in one SQLite file; several named queues may share the file.

    Connections are per thread and per process (rebuilt after ``fork``), so one instance can be
    shared by threads and inherited by child processes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "jobs",
        max_attempts: int = 5,
        clock: Callable[[], float] = time.time,
        synchronous: Synchronous = "normal",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise UserError("queue name must be a non-empty string", field="name")
        check_max_attempts(max_attempts)
        self.path = Path(path)
        self.name = name
        self.max_attempts = max_attempts
        self.clock = clock
        self.synchronous = check_synchronous(synchronous)
        self._setup()

    def _setup(self) -> None:
        self._db = connections(self.path, _SCHEMA, self.synchronous)
        self._bell = Path(f"{self.path}.wake")
        self._bell_fd: int | None = None  # this process's end of the doorbell, once waited
        self._bell_pid = os.getpid()
        self._bell_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SqliteQueue(path={str(self.path)!r}, name={self.name!r}, "
            f"max_attempts={self.max_attempts}, synchronous={self.synchronous!r})"
        )

    # Pickling rebuilds connections on the other side (spawned workers get a working queue).
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "max_attempts": self.max_attempts,
            "clock": self.clock,
            "synchronous": self.synchronous,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    # ------------------------------------------------------------------ protocol

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        encoded = encode_body(body)
        delay_s = seconds(delay, "delay", positive=False)
        check_priority(priority)
        msg_id = uuid.uuid4().hex
        now = self.clock()
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO messages (id, queue, body, priority, visible_at, attempts, created_at)"
                " VALUES (?, ?, ?, ?, ?, 0, ?)",
                (msg_id, self.name, encoded, priority, now + delay_s, now),
            )
        self._db.after_commit(self._ring)
        return msg_id

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        check_max_messages(max_messages, _MAX_RECEIVE)
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        out: list[QueueMessage] = []
        reason = f"max attempts ({self.max_attempts}) exceeded"
        if not self._any_visible():
            return out
        with self._db.tx() as db:
            now = self.clock()
            while len(out) < max_messages:
                rows = db.execute(
                    "SELECT seq, id, body, priority, attempts FROM messages"
                    " WHERE queue = ? AND visible_at <= ?"
                    " ORDER BY priority DESC, seq ASC LIMIT ?",
                    (self.name, now, max_messages - len(out)),
                ).fetchall()
                if not rows:
                    break
                for seq, msg_id, body, priority, attempts in rows:
                    if attempts >= self.max_attempts:
                        self._move_to_dlq(db, seq, reason, now)
                        continue
                    receipt = uuid.uuid4().hex
                    db.execute(
                        "UPDATE messages SET attempts = attempts + 1, receipt = ?, visible_at = ?"
                        " WHERE seq = ?",
                        (receipt, now + timeout, seq),
                    )
                    out.append(
                        QueueMessage(
                            id=msg_id,
                            body=json.loads(body),
                            attempts=attempts + 1,
                            receipt=receipt,
                            priority=priority,
                        )
                    )
        return out

    def ack(self, message: QueueMessage) -> None:
        with self._db.tx() as db:
            db.execute(
                "DELETE FROM messages WHERE queue = ? AND id = ? AND receipt = ?",
                (self.name, message.id, message.receipt),
            )

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        """Release the job early; the receipt becomes stale (the job is no longer ours)."""
        delay_s = seconds(delay, "delay", positive=False)
        with self._db.tx() as db:
            db.execute(
                "UPDATE messages SET visible_at = ?, receipt = NULL"
                " WHERE queue = ? AND id = ? AND receipt = ?",
                (self.clock() + delay_s, self.name, message.id, message.receipt),
            )
        self._db.after_commit(self._ring)

    def wait(self, timeout: float) -> None:
        """Sleep until a job may be receivable or ``timeout`` passes (the Doorbell port)."""
        limit = seconds(timeout, "timeout", positive=False)
        fd = self._bell_reader()
        # Read after the doorbell is open: a job sent from here on rings it, one sent before
        # shows in this query.
        row = (
            self._db.get()
            .execute("SELECT MIN(visible_at) FROM messages WHERE queue = ?", (self.name,))
            .fetchone()
        )
        if row[0] is not None:
            limit = min(limit, max(0.0, row[0] - self.clock()))
        if limit <= 0:
            return
        if fd is None:
            time.sleep(min(limit, _POLL_S))
            return
        ready, _, _ = select.select([fd], [], [], limit)
        if ready:  # drain: every waiter the byte woke looks for itself
            try:
                while os.read(fd, 4096):
                    pass
            except BlockingIOError:
                pass

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None:
        """Keep the job hidden ``visibility_timeout`` more seconds, while the receipt holds."""
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        with self._db.tx() as db:
            db.execute(
                "UPDATE messages SET visible_at = ? WHERE queue = ? AND id = ? AND receipt = ?",
                (self.clock() + timeout, self.name, message.id, message.receipt),
            )

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        with self._db.tx() as db:
            row = db.execute(
                "SELECT seq FROM messages WHERE queue = ? AND id = ? AND receipt = ?",
                (self.name, message.id, message.receipt),
            ).fetchone()
            if row is not None:
                self._move_to_dlq(db, row[0], str(reason), self.clock())

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        check_limit(limit)
        rows = (
            self._db.get()
            .execute(
                "SELECT id, body, attempts, reason, failed_at FROM dead_letters"
                " WHERE queue = ? ORDER BY rowid DESC LIMIT ?",
                (self.name, limit),
            )
            .fetchall()
        )
        return [
            DeadLetter(id=i, body=json.loads(b), attempts=a, reason=r, failed_at=f)
            for i, b, a, r, f in rows
        ]

    # ------------------------------------------------------------------ extras

    def depth(self) -> int:
        """Jobs in this queue, visible or not (dead letters excluded)."""
        row = (
            self._db.get()
            .execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (self.name,))
            .fetchone()
        )
        return int(row[0])

    def purge(self, *, dead_letters: bool = False) -> None:
        """Drop every job of this queue (and its dead letters if asked)."""
        with self._db.tx() as db:
            db.execute("DELETE FROM messages WHERE queue = ?", (self.name,))
            if dead_letters:
                db.execute("DELETE FROM dead_letters WHERE queue = ?", (self.name,))

    def batch(self) -> AbstractContextManager[None]:
        """The Batching port: the writes made inside (and those of any adapter on this file
        with the same ``synchronous``) commit together, once."""
        return self._db.batch()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """The Batching port: ``fn`` runs once what this thread wrote here is committed."""
        self._db.after_commit(fn)

    def close(self) -> None:
        """Close this process's connections; the queue reconnects if used again."""
        self._db.close()
        with self._bell_lock:
            if self._bell_pid == os.getpid() and self._bell_fd is not None and self._bell_fd >= 0:
                os.close(self._bell_fd)
            self._bell_fd = None

    # ------------------------------------------------------------------ internals

    def _any_visible(self) -> bool:
        """A read, no write lock: idle polls never queue behind the workers' writes."""
        row = (
            self._db.get()
            .execute(
                "SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? LIMIT 1",
                (self.name, self.clock()),
            )
            .fetchone()
        )
        return row is not None

    def _bell_reader(self) -> int | None:
        """This process's read end of the doorbell (opened read-write, so it never sees
        end-of-file when no sender holds it), or None where no FIFO can be made."""
        with self._bell_lock:
            if self._bell_pid != os.getpid():  # inherited across fork: open our own
                self._bell_fd, self._bell_pid = None, os.getpid()
            if self._bell_fd is None:
                try:
                    with suppress(FileExistsError):
                        os.mkfifo(self._bell, 0o600)
                    self._bell_fd = os.open(self._bell, os.O_RDWR | os.O_NONBLOCK)
                except (OSError, AttributeError):  # no FIFOs here (a platform, a filesystem)
                    self._bell_fd = -1
            return self._bell_fd if self._bell_fd >= 0 else None

    def _ring(self) -> None:
        """Wake whoever waits; nobody waiting (no reader) or a full pipe is fine."""
        try:
            fd = os.open(self._bell, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no doorbell yet, or nobody holds it open (ENXIO)
            return
        try:
            os.write(fd, b"\0")
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EPIPE):
                raise
        finally:
            os.close(fd)

    def _move_to_dlq(self, db: sqlite3.Connection, seq: int, reason: str, now: float) -> None:
        db.execute(
            "INSERT INTO dead_letters (id, queue, body, attempts, reason, failed_at)"
            " SELECT id, queue, body, attempts, ?, ? FROM messages WHERE seq = ?",
            (reason, now, seq),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
