"""The :class:`Zone` interface: where shared objects live beyond the local cache.

A zone stores immutable objects under their SHA-1 (keys ``[prefix/]sha1/aa/bb/cc/<hash>``)
plus a small mutable name -> text map (``get_ref``/``set_ref``) used by the action cache.
Zones move bytes only; verification, retries of whole operations, and the local cache in
front of every zone live in :class:`kachery_flows.store.Store`, written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Zone", "object_key"]


def object_key(sha1: str) -> str:
    """The relative key of an object: ``sha1/aa/bb/cc/<hash>`` (kachery's sharding)."""
    return f"sha1/{sha1[0:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}"


class Zone(ABC):
    """A place objects are shared through (shared directory, S3 bucket, HTTP mirror).

    Implementations receive only validated 40-hex hashes. ``get`` writes the raw bytes to
    ``dest`` (a temp file the store then hashes); it must raise
    :class:`~kachery_flows.errors.ObjectNotFoundError` when the object is absent,
    :class:`~kachery_flows.errors.ZoneUnavailableError` for transient trouble and
    :class:`~kachery_flows.errors.ZonePermissionError` when access is denied.
    """

    #: Human-readable name used in error messages (e.g. the URL).
    name: str = "zone"
    #: ``put``, ``delete`` and ``set_ref`` are supported (unless the flags below say not).
    writable: bool = True
    #: ``iter_hashes`` is supported.
    listable: bool = True
    #: the zone can hold a lock file with expiry (local and shared directories).
    supports_locking: bool = False
    #: ``get_ref``/``set_ref`` are supported (the kachery network has no mutable refs).
    supports_refs: bool = True
    #: ``delete`` is supported (the kachery network never deletes).
    deletable: bool = True

    @abstractmethod
    def has(self, sha1: str) -> bool:
        """Whether the zone holds the object."""

    @abstractmethod
    def get(self, sha1: str, dest: Path) -> None:
        """Download the object's bytes to ``dest`` (overwriting it)."""

    @abstractmethod
    def put(self, src: Path, sha1: str) -> None:
        """Upload a verified local file as object ``sha1`` (existing object: success)."""

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Yield the hashes of all objects in the zone."""

    @abstractmethod
    def delete(self, sha1: str) -> None:
        """Remove an object (absent object: success)."""

    @abstractmethod
    def get_ref(self, name: str) -> str | None:
        """Read a mutable ref (None if unset)."""

    @abstractmethod
    def set_ref(self, name: str, value: str | None) -> None:
        """Write (or, with None, remove) a mutable ref."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
