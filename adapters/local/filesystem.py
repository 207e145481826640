"""BlobStore on a local directory: one file per key, readable with ordinary tools.

Writers of one key are serialised so conditional writes (``put_if_absent``/``put_if_match``)
are linearizable: across processes by a POSIX record lock on one byte of the store's single
``.lock`` file (the byte is picked by the key's hash), within a process by a striped thread
lock, since record locks belong to a process, not a thread. No per-key lock file is ever
created. Readers never lock because every write lands with an atomic ``os.replace``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from agentfn.blob_args import (
    as_bytes,
    bare_etag,
    check_etag,
    check_listing,
    content_etag,
    content_hash,
    page_of,
)
from agentfn.errors import NotFound, PreconditionFailed, UserError
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, Page

__all__ = ["FileBlobStore"]

_LOCK_FILE = ".lock"
_LOCK_DIR = ".locks"  # where earlier versions kept one lock file per key: still reserved
_LOCK_RANGE = 1 << 31  # bytes of .lock a key's hash picks from (locks need no real bytes)
_STRIPES = 64  # in-process locks per root; divides _LOCK_RANGE: one byte, one stripe
# Temp files live next to their target so os.replace never crosses a filesystem.
_TMP_PREFIX = ".~tmp-"
_MAX_SEGMENT = 255  # NAME_MAX on common filesystems
_MKDIR_RETRIES = 100


def _etag(data: bytes) -> str:
    return content_etag(content_hash(data))


def _check_path(value: object, field: str, *, allow_empty: bool) -> str:
    """Plain relative paths (agentfn.keys) that cannot escape the root or reach its internals."""
    segments = check_path(value, field, allow_empty=allow_empty)
    assert isinstance(value, str)
    for seg in segments:
        if len(seg.encode("utf-8")) > _MAX_SEGMENT:
            raise UserError(
                f"{field} {value!r} has a segment longer than {_MAX_SEGMENT} bytes", field=field
            )
        if seg.startswith(_TMP_PREFIX):
            raise UserError(
                f"{field} {value!r} uses the reserved segment prefix {_TMP_PREFIX!r}", field=field
            )
    if segments and segments[0] in (_LOCK_DIR, _LOCK_FILE):
        raise UserError(f"{field} {value!r} uses the reserved name {segments[0]!r}", field=field)
    return value


class _RootLocks:
    """One process's locks on one store root: shared by every FileBlobStore of that root in
    the process, because a record lock belongs to the process and closing any descriptor of
    ``.lock`` drops all of them. The descriptor closes only while no lock is held."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stripes = [threading.Lock() for _ in range(_STRIPES)]
        self.guard = threading.Lock()
        self.fd: int | None = None
        self.held = 0

    @contextlib.contextmanager
    def hold(self, offset: int) -> Iterator[None]:
        with self.stripes[offset % _STRIPES]:
            with self.guard:
                if self.fd is None:
                    self.root.mkdir(parents=True, exist_ok=True)
                    self.fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
                self.held += 1
                fd = self.fd
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
                try:
                    yield
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
            finally:
                with self.guard:
                    self.held -= 1

    def close_if_idle(self) -> None:
        with self.guard:
            if self.held == 0 and self.fd is not None:
                os.close(self.fd)
                self.fd = None


_ROOTS: dict[Path, _RootLocks] = {}
_ROOTS_PID = os.getpid()
_ROOTS_GUARD = threading.Lock()
_MAX_OPEN_ROOTS = 64  # beyond this, idle roots give their descriptor back


def _root_locks(root: Path) -> _RootLocks:
    global _ROOTS_PID
    with _ROOTS_GUARD:
        if os.getpid() != _ROOTS_PID:  # forked: the parent's locks are not ours
            _ROOTS.clear()
            _ROOTS_PID = os.getpid()
        locks = _ROOTS.get(root)
        if locks is None:
            if len(_ROOTS) >= _MAX_OPEN_ROOTS:
                for other in _ROOTS.values():
                    other.close_if_idle()
            locks = _ROOTS[root] = _RootLocks(root)
        return locks


class FileBlobStore:
    """Objects as files under ``root``; etag = quoted blake2b-128 of the content.

    Because a key is a path, a key cannot coexist with keys below it ("a" and "a/b"): writing
    one while the other exists raises ``UserError(field="key")``.
    Etags are content hashes, so rewriting identical bytes keeps the etag (as on S3).
    """

    def __init__(self, root: str | Path, *, durable: bool = False) -> None:
        self.root = Path(root).resolve()
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileBlobStore(root={str(self.root)!r}, durable={self.durable})"

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        path = self._path(key)
        data = self._read(path)
        if data is None:
            raise NotFound(f"blob {key!r} not found")
        return Blob(key=key, data=data, etag=_etag(data))

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        _check_path(prefix, "prefix", allow_empty=True)
        check_listing(cursor, limit)
        # Only the directory holding the prefix is walked; its last segment filters names.
        dir_part, _, name_prefix = prefix.rpartition("/")
        base = self.root / dir_part if dir_part else self.root
        key_base = dir_part + "/" if dir_part else ""
        keys: list[str] = []
        for key in self._walk(base, key_base, name_prefix, cursor):
            keys.append(key)
            if len(keys) > limit:
                break
        return page_of(keys, limit)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        data = as_bytes(data)
        with self._lock(key):
            self._write(key, path, lambda f: f.write(data))
        return _etag(data)

    def put_if_absent(self, key: str, data: bytes) -> str:
        path = self._path(key)
        data = as_bytes(data)
        with self._lock(key):
            if path.is_file():
                raise PreconditionFailed(f"blob {key!r} already exists")
            self._write(key, path, lambda f: f.write(data))
        return _etag(data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        path = self._path(key)
        data = as_bytes(data)
        check_etag(etag)
        with self._lock(key):
            current = self._read(path)
            if current is None:
                raise PreconditionFailed(f"blob {key!r} does not exist")
            if bare_etag(_etag(current)) != bare_etag(etag):
                raise PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
            self._write(key, path, lambda f: f.write(data))
        return _etag(data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._lock(key):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            except IsADirectoryError:
                return  # "key" is only a prefix of other keys: nothing stored under it.
        self._prune(path.parent)

    # ------------------------------------------------------------------ internals

    def _path(self, key: str) -> Path:
        return self.root / _check_path(key, "key", allow_empty=False)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """Exclusive per-key lock shared by all threads and processes."""
        slot = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest())
        offset = slot % _LOCK_RANGE
        with _root_locks(self.root).hold(offset):
            yield

    def upload(self, key: str, stream: BinaryIO) -> str:
        path = self._path(key)
        digest = content_hash()

        def fill(f: BinaryIO) -> None:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                f.write(chunk)

        with self._lock(key):
            self._write(key, path, fill)
        return content_etag(digest)

    def download(self, key: str, sink: BinaryIO) -> str:
        digest = content_hash()
        try:
            with self._path(key).open("rb") as f:  # the open inode survives a concurrent replace
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
                    sink.write(chunk)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"blob {key!r} not found") from None
        return content_etag(digest)

    def _write(self, key: str, path: Path, fill: Callable[[BinaryIO], object]) -> None:
        parent = path.parent
        fd, tmp = self._open_tmp(key, parent)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            try:
                os.replace(tmp, path)
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise self._conflict(key) from exc
            except OSError as exc:
                if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise self._conflict(key) from exc
                raise
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if self.durable:
            self._fsync_dir(parent)

    def _open_tmp(self, key: str, parent: Path) -> tuple[int, Path]:
        """Create the parent dirs and an exclusive temp file in them.

        A concurrent ``delete`` may prune a directory between our mkdir and open (which makes
        even ``mkdir(exist_ok=True)`` fail), so retry unless a file really blocks the path.
        """
        for attempt in range(_MKDIR_RETRIES):
            tmp = parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            try:
                os.makedirs(parent, exist_ok=True)
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), tmp
            except (FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
                if self._file_in_the_way(parent):
                    raise self._conflict(key) from exc
                if attempt == _MKDIR_RETRIES - 1:
                    raise
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise UserError(
                        f"key {key!r} is too long for the filesystem", field="key"
                    ) from exc
                raise
        raise AssertionError("unreachable")

    def _file_in_the_way(self, directory: Path) -> bool:
        """Whether a file holds the place of ``directory`` or of a parent. One ``stat`` per
        level: ``exists()`` then ``is_dir()`` would take a directory that a concurrent
        ``delete`` pruned in between for a file."""
        while directory != self.root and self.root in directory.parents:
            try:
                mode = os.stat(directory).st_mode
            except (FileNotFoundError, NotADirectoryError):
                mode = None  # gone (pruned), or a parent is not a directory: look higher
            if mode is not None and not stat.S_ISDIR(mode):
                return True
            directory = directory.parent
        return False

    @staticmethod
    def _conflict(key: str) -> UserError:
        return UserError(
            f"key {key!r} conflicts with an existing key: the local store cannot hold both "
            "a key and keys below it",
            field="key",
        )

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _prune(self, directory: Path) -> None:
        """Best effort: remove now-empty parents so deleted prefixes leave no trace."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _walk(
        self, base: Path, key_base: str, name_prefix: str, cursor: str | None
    ) -> Iterator[str]:
        """Yield keys under ``base`` in lexicographic order, strictly after ``cursor``.

        A directory sorts as ``name + "/"`` because every key inside it starts with that, which
        makes a sorted depth-first walk produce exactly the lexicographic order of full keys.
        """
        try:
            with os.scandir(base) as it:
                entries = []
                for entry in it:
                    name = entry.name
                    if not name.startswith(name_prefix) or name.startswith(_TMP_PREFIX):
                        continue
                    if not key_base and name in (_LOCK_DIR, _LOCK_FILE):
                        continue
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    entries.append((name + "/" if is_dir else name, is_dir, entry.path))
        except (FileNotFoundError, NotADirectoryError):
            return
        entries.sort()
        for sort_name, is_dir, path in entries:
            full = key_base + sort_name
            if is_dir:
                # Every key below starts with `full`; skip the subtree if all of it is <= cursor.
                if cursor is not None and full < cursor and not cursor.startswith(full):
                    continue
                yield from self._walk(Path(path), full, "", cursor)
            elif cursor is None or full > cursor:
                yield full
