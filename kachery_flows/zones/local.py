"""A zone in a directory: a lab-shared mount, another disk, or a second store root.

Layout: ``<root>/sha1/aa/bb/cc/<hash>`` (kachery's, so a kachery-cloud cache can serve as
a zone) and ``<root>/refs/<name>``; temp files go to ``<root>/.kachery-flows/staging/``
and are renamed into place, so readers never see a partial object or ref.

In group-shared mode every directory the zone creates is made ``2775`` (group-writable,
setgid so new entries inherit the directory's group) and every file ``0664``, whatever
the writer's umask, so the members of one UNIX group can all add objects.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlsplit

from .. import _layout
from .._atomic import holds, make_dirs, publish, staged_writer
from .._safeopen import NotRegularFileError, open_under, read_fd
from .._scan import iter_objects
from ..errors import (
    CorruptObjectError,
    ObjectNotFoundError,
    StoreWriteError,
    ZoneError,
    ZonePermissionError,
)
from ..hashing import sha1_of_file
from ..uri import redact_url
from ._options import check_options, retry_option
from .base import MAX_REF_BYTES, Progress, Zone, decode_ref, ref_key

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["LocalZone"]

_OPTIONS = ("read_only", "retry", "group_shared", "fsync")

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_BLOCK = 8 * 1024 * 1024


def _copy(src: Path, dest: Path, progress: Progress | None) -> None:
    """Copy a file; the caller hashes ``dest`` afterwards (from the page cache).

    Without progress the kernel copies (sendfile / copy_file_range): on this project's
    2-core benchmark box, a kernel copy followed by SHA-1 was as fast as a threaded
    read/hash/write loop and much steadier under load.
    """
    if progress is None:
        shutil.copyfile(src, dest)
        return
    with open(src, "rb", buffering=0) as f, open(dest, "wb") as out:
        while chunk := f.read(_BLOCK):
            out.write(chunk)
            progress(len(chunk))


def _sparse(st: os.stat_result) -> bool:
    """More than 1 MiB of ``st``'s size is holes (no blocks allocated)."""
    blocks = getattr(st, "st_blocks", None)
    return blocks is not None and blocks * 512 + (1 << 20) < st.st_size


def _hash_fd(fd: int) -> str:
    h = hashlib.sha1()
    while chunk := os.read(fd, _BLOCK):
        h.update(chunk)
    return h.hexdigest()


def _copy_fd(fd: int, size: int, dest: Path, progress: Progress | None) -> None:
    """Copy at most ``size + 1`` bytes from the open regular file ``fd`` to ``dest`` (one
    byte more than the file had when it was opened proves a growing file wrong)."""
    with open(dest, "wb") as out:
        remaining = size + 1
        kernel = progress is None and hasattr(os, "sendfile")
        while remaining > 0:
            if kernel:
                try:
                    sent = os.sendfile(out.fileno(), fd, None, min(remaining, 1 << 30))
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    kernel = False
                    continue
                if sent == 0:
                    break
                remaining -= sent
                continue
            chunk = os.read(fd, min(remaining, _BLOCK))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
            if progress is not None:
                progress(len(chunk))


def _local_path(url: str) -> Path:
    """The directory a ``file://`` URL, absolute path or ``~`` path names."""
    if not url.startswith("file://"):
        return Path(url).expanduser()
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ZoneError(
            f"file URL {redact_url(url)!r} names host {parts.hostname!r}; use file:///path"
        )
    if parts.query or parts.fragment:
        raise ZoneError(f"file URL {redact_url(url)!r} must not have a query or fragment")
    return Path(unquote(parts.path))


class LocalZone(Zone):
    """A zone stored in a directory on a mounted file system.

    Parameters
    ----------
    root:
        The zone directory (created on first write).
    group_shared:
        Make directories ``2775`` (group-writable, setgid) and files ``0664``, so a
        UNIX group can share the zone (kachery-cloud's multi-user flag has no such
        effect: its mode is masked by the umask).
    fsync:
        fsync objects and refs before they become visible.
    read_only:
        Refuse ``put``, ``delete`` and ``set_ref`` (e.g. a colleague's directory).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        group_shared: bool = False,
        fsync: bool = True,
        read_only: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        self.name = f"file://{self.root}"
        self.group_shared = group_shared
        self.fsync = fsync
        self.writable = not read_only

    @classmethod
    def from_config(cls, url: str, options: Mapping[str, Any], settings: Settings) -> LocalZone:
        """Keys: ``read_only``, ``group_shared`` (default ``KACHERY_CLOUD_MULTI_USER``),
        ``fsync`` (default ``KACHERY_FLOWS_FSYNC``); ``retry`` is checked, and unused."""
        check_options(options, _OPTIONS, "local")
        retry_option(options, settings)
        return cls(
            _local_path(url),
            group_shared=bool(options.get("group_shared", settings.multi_user)),
            fsync=bool(options.get("fsync", settings.fsync)),
            read_only=bool(options.get("read_only", False)),
        )

    def _path(self, sha1: str) -> Path:
        return _layout.object_path(self.root, sha1)

    @property
    def _staging(self) -> Path:
        return _layout.staging_dir(self.root)

    def _denied(self, exc: OSError, what: str) -> NoReturn:
        raise ZonePermissionError(
            f"zone {self.name} denied {what}: {exc.strerror or exc}; check the directory's "
            "owner, group and mode (a lab share needs group write and setgid)"
        ) from exc

    def shared_lock_dir(self) -> Path | None:
        """``<root>/.kachery-flows/locks`` when the zone is writable: every host that
        mounts the directory sees the same lock files."""
        return _layout.locks_dir(self.root) if self.writable else None

    def has(self, sha1: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self._path(sha1)).st_mode)
        except OSError:
            return False

    def holds(self, sha1: str, size: int) -> bool:
        """The object is a regular file of ``size`` bytes (one ``lstat``)."""
        try:
            st = os.lstat(self._path(sha1))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == size

    def get(self, sha1: str, dest: Path, progress: Progress | None = None) -> None:
        """Copy the object, which must be a regular file reached without following any
        symlink below the zone root (see :mod:`kachery_flows._safeopen`)."""
        try:
            fd, st = open_under(str(self.root), _layout.object_key(sha1))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(
                f"sha1://{sha1} is not in zone {self.name}", uri=f"sha1://{sha1}"
            ) from None
        except PermissionError as exc:
            self._denied(exc, f"reading sha1://{sha1}")
        except NotRegularFileError as exc:
            raise ZoneError(
                f"zone {self.name}: sha1://{sha1} is {exc.strerror}; refusing to read it "
                "(a zone holds regular files only)"
            ) from None
        try:
            if _sparse(st):
                # A sparse file costs the zone's writer no disk, but a copy would fill
                # ours: it is hashed in place first, and copied only if it is the object.
                actual = _hash_fd(fd)
                if actual != sha1:
                    raise CorruptObjectError(
                        f"zone {self.name}: sha1://{sha1} is a sparse file of {st.st_size} "
                        "bytes whose bytes do not match its name; nothing was copied",
                        uri=f"sha1://{sha1}",
                        actual_sha1=actual,
                    )
                os.lseek(fd, 0, os.SEEK_SET)
            _copy_fd(fd, st.st_size, dest, progress)
        except PermissionError as exc:  # a copy cannot tell which side refused
            self._denied(exc, f"reading sha1://{sha1}")
        finally:
            os.close(fd)

    def put(self, src: Path, sha1: str, progress: Progress | None = None) -> None:
        self._require_writable(f"store sha1://{sha1}")
        dest = self._path(sha1)
        if holds(dest, sha1, src.stat().st_size):
            return  # a damaged copy (e.g. a flipped bit) is replaced below
        try:
            with staged_writer(
                self._staging, fsync=self.fsync, group_shared=self.group_shared
            ) as w:
                try:
                    _copy(src, w.path, progress)
                except OSError as exc:
                    raise StoreWriteError.from_os_error(exc, f"copy {src} into", w.path) from exc
                actual = sha1_of_file(w.path)
            if actual != sha1:
                w.path.unlink(missing_ok=True)
                raise CorruptObjectError(
                    f"refusing to upload {src} as sha1://{sha1} to zone {self.name}: its "
                    f"bytes hash to {actual}",
                    uri=f"sha1://{sha1}",
                    actual_sha1=actual,
                )
            publish(w.path, dest, sha1=sha1, fsync=self.fsync, group_shared=self.group_shared)
        except StoreWriteError as exc:
            if exc.errno in _DENIED:
                self._denied(exc, f"writing sha1://{sha1}")
            raise

    def iter_hashes(self) -> Iterator[str]:
        """The regular files at their object keys (the store's own walk)."""
        try:
            for sha1, _path, _st in iter_objects(str(self.root)):
                yield sha1
        except PermissionError as exc:
            self._denied(exc, "listing objects")

    def delete(self, sha1: str) -> None:
        self._require_writable(f"delete sha1://{sha1}")
        try:
            self._path(sha1).unlink(missing_ok=True)
        except PermissionError as exc:
            self._denied(exc, f"deleting sha1://{sha1}")

    def _ref_path(self, name: str) -> Path:
        return self.root / ref_key(name)

    def get_ref(self, name: str) -> str | None:
        key = ref_key(name)
        try:
            fd, st = open_under(str(self.root), key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            self._denied(exc, f"reading ref {name!r}")
        except NotRegularFileError as exc:
            raise ZoneError(f"zone {self.name}: ref {name!r} is {exc.strerror}") from None
        try:
            data = read_fd(fd, min(MAX_REF_BYTES, st.st_size) + 1)
        finally:
            os.close(fd)
        return decode_ref(data, self.name, name)

    def set_ref(self, name: str, value: str | None) -> None:
        path = self._ref_path(name)
        self._require_writable(f"set ref {name!r}")
        try:
            if value is None:
                path.unlink(missing_ok=True)
                return
            with staged_writer(
                self._staging, fsync=self.fsync, group_shared=self.group_shared
            ) as w:
                w.write(value.encode("utf-8"))
            try:
                make_dirs(path.parent, group_shared=self.group_shared)
                os.replace(w.path, path)
            except OSError:
                w.path.unlink(missing_ok=True)
                raise
        except PermissionError as exc:
            self._denied(exc, f"writing ref {name!r}")
        except StoreWriteError as exc:
            if exc.errno in _DENIED:
                self._denied(exc, f"writing ref {name!r}")
            raise
