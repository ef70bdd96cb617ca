"""Byte-range locks: a store's own memo locks (one host).

A :class:`RangeLock` is one byte of a fixed lock-table file, locked with ``fcntl`` open
file description locks at an offset taken from the memo key; nothing is created or deleted
per call, and the kernel frees the lock when its holder dies. Each table is opened once per
process (:class:`_LockTable`), and reopened in a forked child.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
from contextlib import suppress
from pathlib import Path

from ._atomic import make_dirs
from .errors import StoreWriteError

__all__ = ["RangeLock", "range_locks_supported"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

try:
    import fcntl

    _OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
except ImportError:  # not POSIX
    _OFD_SETLK = None
#: Bits of the memo key used as the lock's offset in the table: 2**60 slots, so two keys
#: share a slot with probability 2**-60 (a shared slot would only serialize them).
_SLOT_HEX_DIGITS = 15


def range_locks_supported() -> bool:
    """Whether this platform has open-file-description byte-range locks (Linux)."""
    return _OFD_SETLK is not None


def _flock(kind: int, start: int) -> bytes:
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (must be 0 for OFD locks)
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, 1, 0)


class _LockTable:
    """One lock-table file, opened once per process; remembers the slots held here.

    Byte-range locks of an open file description do not conflict with each other, so
    two threads of this process are kept apart by :attr:`held` instead.
    """

    def __init__(self, path: Path, group_shared: bool) -> None:
        self.path = path
        self.group_shared = group_shared
        self.mutex = threading.Lock()
        self.held: set[int] = set()
        self._fd: int | None = None

    def fd(self) -> int:
        if self._fd is None:
            self._fd = self._open()
        return self._fd

    def _open(self) -> int:
        """Open (creating) the table: never through a symlink, never blocking on a FIFO,
        and only if it is a regular file."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
        mode = 0o664 if self.group_shared else 0o644
        try:
            try:
                fd = os.open(self.path, flags, mode)
            except FileNotFoundError:
                make_dirs(self.path.parent, group_shared=self.group_shared)
                fd = os.open(self.path, flags, mode)
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "open the lock table", self.path) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoreWriteError(
                errno.EINVAL,
                f"cannot use the lock table {self.path}: it is not a regular file; remove "
                "it (kachery-flows recreates it)",
                str(self.path),
            )
        if self.group_shared:
            with suppress(OSError):
                os.fchmod(fd, 0o664)
        return fd

    def forget_after_fork(self) -> None:
        """In a forked child: the inherited descriptor shares the parent's locks."""
        if self._fd is not None:
            with suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self.held = set()
        self.mutex = threading.Lock()


_tables: dict[Path, _LockTable] = {}
_tables_mutex = threading.Lock()


def _table(path: Path, group_shared: bool) -> _LockTable:
    table = _tables.get(path)
    if table is None:
        with _tables_mutex:
            table = _tables.setdefault(path, _LockTable(path, group_shared))
    return table


def _forget_tables_after_fork() -> None:
    global _tables_mutex
    _tables_mutex = threading.Lock()
    for table in _tables.values():
        table.forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_tables_after_fork)


class RangeLock:
    """A non-blocking lock on one byte of a fixed lock-table file (``fcntl`` open file
    description locks), at an offset taken from the memo key.

    Taking and giving it up creates and deletes no file; the kernel releases it when its
    holder exits, however it exits (SIGKILL included), so it is never stale. It is used
    for a store's own locks (one host); locks in a shared directory stay
    :class:`FileLock`, whose owner info and expiry work on any shared file system.
    """

    def __init__(self, table: Path, key: str, *, group_shared: bool = False) -> None:
        self._table = _table(table, group_shared)
        self._slot = int(key[:_SLOT_HEX_DIGITS], 16)
        self._held = False

    @property
    def path(self) -> Path:
        """The lock-table file."""
        return self._table.path

    def acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if self._held:
            raise RuntimeError(f"lock {self._slot:x} in {self.path} is already held by this object")
        table, slot = self._table, self._slot
        assert _OFD_SETLK is not None
        with table.mutex:
            if slot in table.held:
                return False
            try:
                fcntl.fcntl(table.fd(), _OFD_SETLK, _flock(fcntl.F_WRLCK, slot))
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise StoreWriteError.from_os_error(exc, "lock", table.path) from exc
            table.held.add(slot)
        self._held = True
        return True

    def release(self) -> None:
        """Give the lock up."""
        if not self._held:
            return
        self._held = False
        table, slot = self._table, self._slot
        assert _OFD_SETLK is not None
        with table.mutex:
            table.held.discard(slot)
            with suppress(OSError):
                fcntl.fcntl(table.fd(), _OFD_SETLK, _flock(fcntl.F_UNLCK, slot))
