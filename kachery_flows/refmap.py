"""A store's ref map: the one mutable name -> text map of a store.

The action cache keeps its entries here (``memo/<key>``), the lineage index its reverse
entries (``lineage/<sha1>``), and the Prefect storage block its records. The map is the
zone's (``Zone.get_ref``/``set_ref``) when a writable zone is configured, so a shared
directory or bucket shares it; otherwise it is the local directory
:func:`kachery_flows._layout.refs_dir` of the store's root. A read-only zone's refs are
read after the local ones; a zone without mutable refs (the kachery network) shares
objects only, and the map stays local.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from ._atomic import replace_small
from ._layout import refs_dir
from ._safeopen import READ_FLAGS, read_fd
from .errors import ZoneError, ZonePermissionError, ZoneUnavailableError
from .zones.base import MAX_REF_BYTES, Zone

if TYPE_CHECKING:
    from .store import Store

__all__ = ["RefMap"]


class _DirRefMap:
    """A name -> text map in a directory; atomic replace on write."""

    def __init__(self, base: Path, store: Store) -> None:
        self.base = base
        self.store = store
        self._prefix = f"{base}/"

    def get(self, name: str) -> str | None:
        """The text of ref ``name``; None if it is absent, a symlink, a directory, a FIFO
        (opened without blocking, so it never hangs) or larger than ``MAX_REF_BYTES``."""
        try:
            fd = os.open(self._prefix + name, READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise
        try:
            data = os.read(fd, 4096)
            if len(data) == 4096:
                data += read_fd(fd, MAX_REF_BYTES + 1 - 4096)
        except (IsADirectoryError, BlockingIOError):
            return None
        finally:
            os.close(fd)
        if len(data) > MAX_REF_BYTES:
            return None
        return data.decode("utf-8", "replace")

    def set(self, name: str, value: str | None) -> None:
        path = self.base / name
        if value is None:
            path.unlink(missing_ok=True)
            return
        store = self.store
        replace_small(
            store.staging_dir,
            path,
            value.encode("utf-8"),
            fsync=store.fsync,
            group_shared=store.group_shared,
        )

    def names(self, prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(self.base / prefix))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                yield f"{prefix}/{entry.name}"


class RefMap:
    """A store's mutable name -> text map: its zone's refs when the zone is writable and
    has refs (shared with every machine using the zone); otherwise the local directory
    :func:`kachery_flows._layout.refs_dir`, whose reads fall back to a read-only zone's
    refs.

    Names are zone ref names (see :func:`kachery_flows.zones.base.validate_ref_name`);
    callers taking names from outside validate them first.
    """

    def __init__(self, store: Store) -> None:
        zone = store.zone
        refs = zone is not None and zone.supports_refs
        #: The writable zone holding the map, or None when the map is local.
        self.zone: Zone | None = zone if refs and zone is not None and zone.writable else None
        # A read-only zone's entries are read after the local ones, unless its refs may
        # not decide hits (a plain-http mirror without opt-in, see Zone.memo_refs).
        self._fallback_zone: Zone | None = (
            zone if refs and zone is not None and not zone.writable and zone.memo_refs else None
        )
        #: The local map (None when the map is the zone's).
        self.local: _DirRefMap | None = (
            None if self.zone is not None else _DirRefMap(refs_dir(store.root), store)
        )

    def get(self, name: str) -> str | None:
        """The text of ``name``, or None; also None when a zone holds something there that
        cannot be a ref (larger than ``MAX_REF_BYTES``, or not text): others write a zone's
        refs, and a bad one must read as absent, not fail the caller. Transient trouble
        and denied access still raise."""
        try:
            if self.zone is not None:
                return self.zone.get_ref(name)
            assert self.local is not None
            text = self.local.get(name)
            if text is None and self._fallback_zone is not None:
                with suppress(NotImplementedError):
                    text = self._fallback_zone.get_ref(name)
            return text
        except (ZoneUnavailableError, ZonePermissionError):
            raise
        except ZoneError:
            return None

    def set(self, name: str, value: str | None) -> None:
        """Set ``name`` to ``value`` (None removes it)."""
        if self.zone is not None:
            self.zone.set_ref(name, value)
        else:
            assert self.local is not None
            self.local.set(name, value)
