"""Atomic publication of objects: write to a staging temp file, fsync, rename.

A reader never sees a partial object under its final name: bytes go to a uniquely named
temp file in the store's staging directory (same file system as the objects), are hashed
while written, fsynced, and only then renamed to ``sha1/aa/bb/cc/<hash>``. A killed writer
leaves at most an orphan ``*.part`` file, which ``verify``/``gc`` remove.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import StoreWriteError
from .hashing import HashingWriter, sha1_of_file

__all__ = [
    "TEMP_SUFFIX",
    "copy_file_into",
    "create_marker",
    "file_writer",
    "fsync_dir",
    "holds",
    "make_dirs",
    "publish",
    "staged_writer",
]

_COPY_BLOCK = 8 * 1024 * 1024

TEMP_SUFFIX = ".part"


def make_dirs(path: Path, *, group_shared: bool) -> None:
    """Create ``path`` and its parents; in group-shared mode make them 2775 (setgid)."""
    if path.is_dir():
        return
    parent = path.parent
    if parent != path and not parent.is_dir():
        make_dirs(parent, group_shared=group_shared)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    if group_shared:
        # chmod is not masked by the umask, unlike mkdir's mode argument; the setgid bit
        # makes files created below inherit the directory's group.
        os.chmod(path, 0o2775)


def create_marker(path: Path, *, group_shared: bool) -> None:
    """Create the empty file ``path`` (and its directory) if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o664)
    except FileNotFoundError:
        make_dirs(path.parent, group_shared=group_shared)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o664)
    try:
        if group_shared:
            os.fchmod(fd, 0o664)  # not masked by the umask
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename into it survives a crash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    with suppress(OSError):
        os.fsync(fd)
    with suppress(OSError):
        os.close(fd)


@contextmanager
def staged_writer(
    staging_dir: Path, *, fsync: bool, group_shared: bool = False
) -> Iterator[HashingWriter]:
    """Yield a :class:`HashingWriter` on a new temp file in ``staging_dir``.

    On normal exit the file is flushed (and fsynced) and left for :func:`publish`; on an
    exception it is removed. OS errors become :class:`StoreWriteError`.
    """
    try:
        make_dirs(staging_dir, group_shared=group_shared)
    except OSError as exc:
        raise StoreWriteError.from_os_error(exc, "create", staging_dir) from exc
    path = staging_dir / f"{secrets.token_hex(12)}{TEMP_SUFFIX}"
    mode = 0o664 if group_shared else 0o666
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        raise StoreWriteError.from_os_error(exc, "create a temp file in", staging_dir) from exc
    try:
        writer = HashingWriter(fd, path)
        try:
            if group_shared:
                os.fchmod(fd, 0o664)  # not masked by the umask, unlike os.open's mode
            yield writer
            if fsync:
                _fsync(fd, path)
        except BaseException:
            with suppress(OSError):
                os.close(fd)
            raise
        try:
            os.close(fd)  # NFS and quotas may report a failed write only now
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "close", path) from exc
    except BaseException:
        _discard(path)
        raise


def _fsync(fd: int, path: Path) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StoreWriteError.from_os_error(exc, "fsync", path) from exc


def file_writer(
    path: str | os.PathLike[str], progress: Callable[[int], object] | None = None
) -> Callable[[HashingWriter], None]:
    """A writer of the file ``path`` for a staged write, after checking (before anything
    is staged) that it is a file: IsADirectoryError or FileNotFoundError otherwise."""
    source = Path(path)
    if source.is_dir():
        raise IsADirectoryError(f"cannot store {source}: it is a directory")
    if not source.is_file():
        raise FileNotFoundError(f"cannot store {source}: no such file")
    return lambda writer: copy_file_into(source, writer, progress)


def copy_file_into(
    source: Path, writer: HashingWriter, progress: Callable[[int], object] | None = None
) -> None:
    """Copy ``source`` into ``writer`` block by block (hashed on the way)."""
    with open(source, "rb", buffering=0) as f:
        buf = bytearray(_COPY_BLOCK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            writer.write(view[:n])
            if progress is not None:
                progress(n)


def _discard(path: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def holds(path: Path, sha1: str, size: int) -> bool:
    """Whether the file ``path`` exists and holds the ``size`` bytes that hash to ``sha1``.

    The size is compared first, so only a file that may be the object is re-hashed.
    """
    try:
        if path.stat().st_size != size:
            return False
        return sha1_of_file(path) == sha1
    except FileNotFoundError:
        return False


def publish(
    temp_path: Path, dest: Path, *, sha1: str, fsync: bool, group_shared: bool = False
) -> bool:
    """Move a finished temp file (whose bytes hash to ``sha1``) to ``dest``; return True
    if ``dest`` did not exist before.

    An existing file is kept only if it really is the object (same size and hash, the
    check git makes on a collision): a damaged copy under the object's name, truncated
    or with a flipped bit, is replaced atomically, so storing the bytes again repairs it.
    """
    try:
        existed = os.path.lexists(dest)
        if existed and holds(dest, sha1, temp_path.stat().st_size):
            _discard(temp_path)
            return False
        make_dirs(dest.parent, group_shared=group_shared)
        os.replace(temp_path, dest)
    except OSError as exc:
        _discard(temp_path)
        raise StoreWriteError.from_os_error(exc, "publish", dest) from exc
    if fsync:
        fsync_dir(dest.parent)
    return not existed


def replace_small(
    staging_dir: Path, path: Path, data: bytes, *, fsync: bool, group_shared: bool
) -> None:
    """Replace the file ``path`` with ``data`` atomically (through ``staging_dir``),
    creating its directory if needed; :class:`StoreWriteError` on a disk error."""
    with staged_writer(staging_dir, fsync=fsync, group_shared=group_shared) as w:
        w.write(data)
    try:
        try:
            os.replace(w.path, path)
        except FileNotFoundError:
            make_dirs(path.parent, group_shared=group_shared)
            os.replace(w.path, path)
    except OSError as exc:
        w.path.unlink(missing_ok=True)
        raise StoreWriteError.from_os_error(exc, "write", path) from exc
