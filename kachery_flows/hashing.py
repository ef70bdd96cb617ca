"""SHA-1 content hashing: of files, of buffers, and in the same pass as a write."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ._background import BackgroundThread
from .errors import StoreWriteError

__all__ = ["sha1_of_bytes", "sha1_of_file"]

_BLOCK = 8 * 1024 * 1024
# Buffers at least this large are hashed on a helper thread while the caller writes them:
# hashlib and os.write both release the GIL, so the hash is overlapped with the write.
_OVERLAP_THRESHOLD = 1024 * 1024

_hasher = BackgroundThread("kachery-sha1")


def sha1_of_bytes(data: bytes | bytearray | memoryview) -> str:
    """SHA-1 of a buffer, as 40 lowercase hex digits."""
    return hashlib.sha1(data).hexdigest()


def sha1_of_file(path: str | os.PathLike[str], progress: Callable[[int], Any] | None = None) -> str:
    """SHA-1 of a file's bytes, read in blocks; ``progress(n)`` is called per block."""
    h = hashlib.sha1()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            if progress is not None:
                progress(n)
    return h.hexdigest()


def _write_all(fd: int, data: memoryview) -> None:
    # os.write may write less than asked (and Linux caps one call near 2 GiB).
    offset = 0
    total = len(data)
    while offset < total:
        offset += os.write(fd, data[offset : offset + (1 << 30)])


class HashingWriter:
    """A binary file writer that computes the SHA-1 of everything written to it.

    Large buffers are hashed on a helper thread while they are written, so storing an
    object costs about one write, not a write plus a second hashing pass.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path
        self._sha1 = hashlib.sha1()
        self._pending: Future[None] | None = None
        self.size = 0

    def write(self, data: Any) -> int:
        """Write ``data`` (any object with the buffer protocol) and hash it.

        ``data`` may be reused as soon as this returns.
        """
        return self._write(data, wait=True)

    def write_unchanged(self, data: Any) -> int:
        """Like :meth:`write`, but the hash of ``data`` may still be running when this
        returns: the caller keeps ``data`` unchanged until :meth:`hexdigest`. The file's
        fsync then overlaps the end of the hash instead of following it."""
        return self._write(data, wait=False)

    def _write(self, data: Any, *, wait: bool) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        self._settle()
        try:
            if n >= _OVERLAP_THRESHOLD:
                future = _hasher.submit(self._sha1.update, view)
                try:
                    _write_all(self._fd, view)
                except BaseException:
                    future.result()
                    raise
                if wait:
                    future.result()
                else:
                    self._pending = future
            else:
                self._sha1.update(view)
                _write_all(self._fd, view)
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "write", self.path) from exc
        self.size += n
        return n

    def _settle(self) -> None:
        """Wait for a hash still running from :meth:`write_unchanged`."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def hexdigest(self) -> str:
        """SHA-1 of the bytes written so far."""
        self._settle()
        return self._sha1.hexdigest()
