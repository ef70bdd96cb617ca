"""Locks for computing one memo key once across processes and hosts.

A store's own locks (one host) are :class:`RangeLock` (see :mod:`kachery_flows._range_lock`):
a byte of one lock-table file, locked with ``fcntl``; nothing is created or deleted per
call, and the kernel frees the lock when its holder dies. Locks in a shared directory (a
zone other hosts use) are :class:`FileLock`, described next and defined here.

The lock is a file holding the owner's pid, host, time and a random nonce, written to a
temp file first and hard-linked into place (``link`` fails if the lock exists: atomic on
local file systems and NFS, as git relies on), so a lock file never exists without its
owner's info. The owner's process refreshes its mtime every :data:`HEARTBEAT_SECONDS`
while it computes, so a lock is stale when its mtime is older than :data:`STALE_SECONDS`
(owner gone, on any host), or at once when its owner is on this host and that process no
longer exists. A stale lock is renamed aside (so two processes breaking it at once cannot
both win) and removed.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import secrets
import stat
import threading
import time
from contextlib import suppress
from pathlib import Path

from ._atomic import make_dirs
from .errors import StoreWriteError

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_SECONDS",
    "UNWRITTEN_SECONDS",
    "FileLock",
]

#: A lock whose file was not refreshed for this long is abandoned.
STALE_SECONDS = 60.0
#: How often a holder refreshes its lock files.
HEARTBEAT_SECONDS = 10.0
#: A lock file without readable owner info is abandoned once this old.
UNWRITTEN_SECONDS = 5.0

_TEMP_SUFFIX = ".tmp"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_READ_SAFE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
# errnos of file systems without hard links (FAT, some FUSE and SMB mounts)
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}
)


@functools.lru_cache(maxsize=1)
def _host() -> str:
    import socket

    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")  # a zombie has exited (its parent did not reap it yet)


class _Heartbeat:
    """One daemon thread that refreshes the mtime of every lock file this process holds."""

    def __init__(self) -> None:
        self._held: dict[Path, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, path: Path) -> None:
        with self._lock:
            self._held[path] = self._held.get(path, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="kachery-lock-heartbeat", daemon=True
                )
                self._thread.start()
        self._wake.set()  # so a changed HEARTBEAT_SECONDS takes effect at once

    def discard(self, path: Path) -> None:
        with self._lock:
            count = self._held.get(path, 0) - 1
            if count > 0:
                self._held[path] = count
            else:
                self._held.pop(path, None)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's locks are not the child's to refresh, and the
        parent's thread and internal lock did not come along."""
        self._held = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait(HEARTBEAT_SECONDS)
            self._wake.clear()
            with self._lock:
                paths = list(self._held)
            for path in paths:
                with suppress(OSError):
                    os.utime(path)


_heartbeat = _Heartbeat()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_heartbeat.forget_after_fork)


class FileLock:
    """A non-blocking lock file; callers poll :meth:`acquire` while they wait."""

    def __init__(self, path: Path, *, group_shared: bool = False) -> None:
        self.path = path
        self.group_shared = group_shared
        self._nonce: str | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free (or stale); never waits."""
        if self._nonce is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        try:
            for _ in range(3):
                if self._create():
                    return True
                if not self._break_if_stale():
                    return False
        except StoreWriteError:
            raise
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "create the lock file", self.path) from exc
        return False

    def _create(self) -> bool:
        """Write the owner's info to a temp file, then hard-link it to the lock's name: the
        lock never exists without its owner (a process killed in between leaves only a
        temp file), so a dead owner is recognised at once. Where hard links are not
        supported, the lock file is created exclusively and then written."""
        nonce = secrets.token_hex(8)
        info = {"pid": os.getpid(), "host": _host(), "time": time.time(), "nonce": nonce}
        temp = self.path.with_name(f"{self.path.name}.{nonce}{_TEMP_SUFFIX}")
        try:
            fd = self._open_exclusive(temp)
        except FileExistsError:
            return False
        try:
            try:
                os.write(fd, json.dumps(info).encode())
            finally:
                os.close(fd)
            try:
                os.link(temp, self.path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                if not self._create_in_place(info):
                    return False
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temp)
        self._nonce = nonce
        _heartbeat.add(self.path)
        return True

    def _open_exclusive(self, path: Path) -> int:
        mode = 0o664 if self.group_shared else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(path, flags, mode)
        except FileNotFoundError:
            make_dirs(path.parent, group_shared=self.group_shared)
            return os.open(path, flags, mode)

    def _create_in_place(self, info: dict[str, object]) -> bool:
        try:
            fd = self._open_exclusive(self.path)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(info).encode())
        finally:
            os.close(fd)
        return True

    def _break_if_stale(self) -> bool:
        """Remove the lock file if its owner is gone; True if the lock may now be free."""
        try:
            before = os.stat(self.path)
            info = _read_info(self.path)
        except FileNotFoundError:
            return True
        age = time.time() - before.st_mtime
        pid = info.get("pid") if info is not None else None
        dead_owner = (
            info is not None
            and info.get("host") == _host()
            and isinstance(pid, int)
            and not _pid_alive(pid)
        )
        # Without hard links an owner killed between creating and writing the lock
        # leaves it empty; a live owner writes it within moments.
        ownerless = info is None and age >= UNWRITTEN_SECONDS
        if age < STALE_SECONDS and not dead_owner and not ownerless:
            return False
        aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(6)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        try:
            moved = os.stat(aside)
            if (moved.st_ino, moved.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
                # Someone replaced the stale lock with a live one meanwhile: give it back.
                with suppress(FileExistsError):
                    os.link(aside, self.path)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(aside)
        return True

    def release(self) -> None:
        """Give the lock up (only removes the file if it is still ours)."""
        nonce, self._nonce = self._nonce, None
        if nonce is None:
            return
        _heartbeat.discard(self.path)
        try:
            info = _read_info(self.path)
        except FileNotFoundError:
            return
        if info is not None and info.get("nonce") == nonce:
            with suppress(FileNotFoundError):
                os.unlink(self.path)


def _read_info(path: Path) -> dict[str, object] | None:
    """The owner info of a lock file; None if it is not a regular file (a FIFO or a
    symlink planted there is never opened for blocking reads) or not readable info."""
    try:
        fd = os.open(path, _O_READ_SAFE)
    except FileNotFoundError:
        raise
    except OSError:
        return None  # ELOOP: a symlink at the lock path
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        info = json.loads(data)
    except ValueError:
        return None  # being written, or garbage
    return info if isinstance(info, dict) else None
