"""A zone in a directory: a lab-shared mount, another disk, or a second store root.

Uses kachery's layout (``<root>/sha1/aa/bb/cc/<hash>``), so a kachery-cloud cache can serve
as a zone, and refs under ``<root>/.kachery-flows/refs/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .._atomic import copy_file_into, make_dirs, publish, staged_writer
from ..errors import CorruptObjectError, ObjectNotFoundError, ZonePermissionError
from ..uri import is_sha1_hex
from .base import Zone, object_key

__all__ = ["LocalZone"]

_REF_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _check_ref_name(name: str) -> str:
    parts = name.split("/")
    for part in parts:
        if not part or part in (".", "..") or not set(part) <= _REF_NAME_CHARS:
            raise ValueError(
                f"invalid ref name {name!r}: use '/'-separated segments of letters, digits, "
                "'-', '_' and '.' (no empty, '.' or '..' segments)"
            )
    return name


class LocalZone(Zone):
    """A zone stored in a directory on a mounted file system.

    Parameters
    ----------
    root:
        The zone directory.
    group_shared:
        Make directories group-writable + setgid and files group-writable, so a UNIX
        group can share the zone (kachery-cloud's multi-user flag has no such effect).
    fsync:
        fsync objects before they become visible.
    """

    supports_locking = True

    def __init__(
        self, root: str | os.PathLike[str], *, group_shared: bool = False, fsync: bool = True
    ) -> None:
        self.root = Path(root).expanduser()
        self.name = f"file://{self.root}"
        self.group_shared = group_shared
        self.fsync = fsync

    def _path(self, sha1: str) -> Path:
        return self.root / object_key(sha1)

    @property
    def _staging(self) -> Path:
        return self.root / ".kachery-flows" / "staging"

    def has(self, sha1: str) -> bool:
        return self._path(sha1).is_file()

    def get(self, sha1: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(sha1), dest)
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"sha1://{sha1} is not in zone {self.name}", uri=f"sha1://{sha1}"
            ) from None
        except PermissionError as exc:
            raise ZonePermissionError(f"zone {self.name} denied reading: {exc}") from exc

    def put(self, src: Path, sha1: str) -> None:
        dest = self._path(sha1)
        if dest.is_file() and dest.stat().st_size == src.stat().st_size:
            return
        with staged_writer(self._staging, fsync=self.fsync, group_shared=self.group_shared) as w:
            copy_file_into(src, w)
        if w.hexdigest() != sha1:
            w.path.unlink(missing_ok=True)
            raise CorruptObjectError(
                f"refusing to upload {src} as sha1://{sha1}: its bytes hash to {w.hexdigest()}"
            )
        publish(w.path, dest, fsync=self.fsync, group_shared=self.group_shared)

    def iter_hashes(self) -> Iterator[str]:
        base = self.root / "sha1"
        for _dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                if is_sha1_hex(name):
                    yield name

    def delete(self, sha1: str) -> None:
        self._path(sha1).unlink(missing_ok=True)

    def _ref_path(self, name: str) -> Path:
        return self.root / ".kachery-flows" / "refs" / _check_ref_name(name)

    def get_ref(self, name: str) -> str | None:
        try:
            return self._ref_path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set_ref(self, name: str, value: str | None) -> None:
        path = self._ref_path(name)
        if value is None:
            path.unlink(missing_ok=True)
            return
        with staged_writer(self._staging, fsync=self.fsync, group_shared=self.group_shared) as w:
            w.write(value.encode("utf-8"))
        make_dirs(path.parent, group_shared=self.group_shared)
        os.replace(w.path, path)

