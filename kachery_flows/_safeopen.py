"""Opening files that others may have planted: regular files only, never blocking.

Zone objects, refs and config files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and the
opened descriptor is checked with ``fstat``: a symlink, FIFO, device, socket or directory
is :class:`NotRegularFileError` (a FIFO would block ``open`` forever, ``/dev/zero`` would
be copied until the disk is full, and a symlink would make us read and hash a file the
zone never held). Checking the descriptor, not the path, leaves no window between the
check and the open.

:func:`open_under` also walks every directory below a trusted root without following
symlinks, so a zone writer cannot redirect ``sha1/aa/`` to a directory of the reader's.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = [
    "READ_FLAGS",
    "NotRegularFileError",
    "open_regular",
    "open_under",
    "read_fd",
    "read_regular",
]

#: ``os.open`` flags of every read of a file others may plant: read-only, close-on-exec,
#: no symlink as the last component, never blocking (a FIFO opens and reads as empty).
READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)
_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_DIRECTORY", 0)
)

_ROOT_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECTORY", 0)


class NotRegularFileError(OSError):
    """The path is a symlink, FIFO, device, socket or directory, not a regular file."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(errno.EINVAL, f"{what}, not a regular file", path)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "a special file"


def _checked(fd: int, path: str) -> tuple[int, os.stat_result]:
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFileError(path, _kind(st.st_mode))
    return fd, st


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` and its ``fstat``.

    :class:`FileNotFoundError` if it is absent; :class:`NotRegularFileError` if it (the
    last component) is a symlink or not a regular file."""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(path, "a symlink") from None
        raise
    return _checked(fd, path)


def open_under(root: str, relative: str) -> tuple[int, os.stat_result]:
    """Like :func:`open_regular` for ``root/relative``, following no symlink below
    ``root`` (``root`` itself may be one: it is configured by the user)."""
    parts = relative.split("/")
    dir_fd = os.open(root, _ROOT_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotRegularFileError(
                        os.path.join(root, relative), f"below a symlink or file ({part})"
                    ) from None
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        try:
            fd = os.open(parts[-1], READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegularFileError(os.path.join(root, relative), "a symlink") from None
            raise
    finally:
        os.close(dir_fd)
    return _checked(fd, os.path.join(root, relative))


def read_regular(path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (one more than allowed
    proves it too long without reading it whole)."""
    fd, st = open_regular(path)
    try:
        return read_fd(fd, min(limit, st.st_size) + 1)
    finally:
        os.close(fd)


def read_fd(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes from ``fd`` (fewer at the end of the file)."""
    chunks: list[bytes] = []
    got = 0
    while got < count:
        chunk = os.read(fd, min(count - got, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
