"""The :class:`Zone` interface: where shared objects live beyond the local cache.

Every zone uses one key layout, so a directory synced to a bucket (or served over HTTP)
is a valid zone as it is::

    [prefix/]sha1/aa/bb/cc/<hash>     immutable objects, named by the SHA-1 of their bytes
    [prefix/]refs/<name>              mutable name -> UTF-8 text map (action-cache records)

(spelled by :mod:`kachery_flows._layout`, which the store's own root uses too).
Zones move bytes only. Hash verification of everything read from a zone, and the local
cache in front of every zone, live in :class:`kachery_flows.store.Store`, written once;
zones retry transient failures with :class:`kachery_flows.RetryPolicy`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _layout
from ..errors import InvalidRefNameError, KacheryError, ZoneError, ZonePermissionError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "MAX_REF_BYTES",
    "Progress",
    "Zone",
    "decode_ref",
    "ref_key",
    "validate_ref_name",
]

#: Called with the number of bytes just transferred.
Progress = Callable[[int], object]

_REF_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+")
_MAX_REF_NAME = 1024

#: Refs are short texts (a memo entry is under 200 bytes); zones read at most this much of
#: one, so a huge file planted in a zone's ``refs/`` cannot exhaust memory.
MAX_REF_BYTES = 1 << 20


def validate_ref_name(name: str) -> str:
    """Return ``name`` if it is a safe ref name, else raise :class:`InvalidRefNameError`.

    A ref name is one or more ``/``-separated segments of ASCII letters, digits, ``-``,
    ``_`` and ``.``, none of them empty, ``.`` or ``..``, at most 1024 characters in all.
    So a ref key can never leave the zone's ``refs/`` prefix.
    """
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_REF_NAME:
        raise InvalidRefNameError(
            f"invalid ref name {name!r}: expected a non-empty string of at most "
            f"{_MAX_REF_NAME} characters"
        )
    for segment in name.split("/"):
        if segment in (".", "..") or not _REF_SEGMENT.fullmatch(segment):
            raise InvalidRefNameError(
                f"invalid ref name {name!r}: use '/'-separated segments of ASCII letters, "
                "digits, '-', '_' and '.' (no empty, '.' or '..' segments)"
            )
    return name


def decode_ref(data: bytes, zone: str, name: str) -> str:
    """The text of a ref read from ``zone`` (at most ``MAX_REF_BYTES + 1`` bytes of it):
    :class:`~kachery_flows.errors.ZoneError` if it is longer or not UTF-8."""
    if len(data) > MAX_REF_BYTES:
        raise ZoneError(
            f"zone {zone}: ref {name!r} is larger than {MAX_REF_BYTES} bytes; it is not a ref "
            "this package wrote"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZoneError(f"zone {zone}: ref {name!r} is not UTF-8 text") from exc


def ref_key(name: str) -> str:
    """The relative key of a ref: ``refs/<name>`` (``name`` is validated)."""
    return _layout.ref_key(validate_ref_name(name))


class Zone(ABC):
    """A place objects are shared through (shared directory, S3 bucket, HTTP mirror).

    Implementations receive only validated 40-hex hashes and must raise typed errors:
    :class:`~kachery_flows.errors.ObjectNotFoundError` when an object is absent,
    :class:`~kachery_flows.errors.ZoneUnavailableError` for transient trouble that
    outlived the zone's retries, and :class:`~kachery_flows.errors.ZonePermissionError`
    when access is denied or the zone is read-only.

    Capabilities are the flags below and two methods the core consults:
    :meth:`shared_lock_dir` (where concurrent memo calls on several hosts take their
    locks) and :meth:`holds` (whether a local copy may be evicted). A zone is opened from a
    URL or a ``zones.json`` entry by :meth:`from_config`, found through the zone registry
    (see :mod:`kachery_flows.zones`).

    ``kachery_flows.testing.ZoneTests`` is the conformance suite a zone must pass.
    """

    #: Human-readable name used in error messages (a URL, without credentials).
    name: str = "zone"
    #: ``put``, ``delete`` and ``set_ref`` are supported (unless the flags below say not).
    writable: bool = True
    #: ``iter_hashes`` is supported.
    listable: bool = True
    #: ``get_ref``/``set_ref`` are supported (the kachery network has no mutable refs).
    supports_refs: bool = True
    #: ``delete`` is supported (the kachery network never deletes).
    deletable: bool = True
    #: Memo hits may unpickle results that others wrote to this zone (``"trust_pickles"``
    #: in ``zones.json``). Off by default: only results this store pickled are unpickled.
    trust_pickles: bool = False
    #: Refs read from this zone may decide memo hits. A plain ``http://`` mirror sets it
    #: False unless opted in (``"plain_http_refs": true``): anyone on the network path can
    #: answer for it, and refs, unlike objects, carry no hash to check.
    memo_refs: bool = True

    @classmethod
    def from_config(cls, url: str, options: Mapping[str, Any], settings: Settings) -> Zone:
        """The zone at ``url`` with the options of its ``zones.json`` entry (every key but
        ``url`` and ``trust_pickles``; empty for a plain URL in ``KACHERY_ZONE``).

        Implementations accept only the keys they know, raising
        :class:`~kachery_flows.zones.ZoneConfigError` for any other (see
        :func:`~kachery_flows.zones.check_options`), and take defaults from ``settings``.
        The default refuses: a zone class that can be opened from a URL overrides it.
        """
        raise ZoneError(f"{cls.__name__} zones cannot be opened from a URL or zones.json")

    def shared_lock_dir(self) -> Path | None:
        """A local directory where every host sharing this zone can keep lock files, so
        that concurrent calls of one memoized function compute once across hosts; None
        (the default) when there is none: each host then locks in its own store."""
        return None

    def holds(self, sha1: str, size: int) -> bool:
        """Whether the zone verifiably holds object ``sha1`` with exactly ``size`` bytes,
        asked now; a zone error counts as no. The default asks :meth:`has` (size unchecked);
        zones that can see an object's size override it."""
        try:
            return self.has(sha1)
        except (OSError, KacheryError):
            return False

    @abstractmethod
    def has(self, sha1: str) -> bool:
        """Whether the zone holds the object."""

    @abstractmethod
    def get(self, sha1: str, dest: Path, progress: Progress | None = None) -> None:
        """Download the object's bytes to the file ``dest`` (created or overwritten).

        The caller hashes ``dest`` before trusting it; ``progress(n)`` may be called as
        bytes arrive.
        """

    @abstractmethod
    def put(self, src: Path, sha1: str, progress: Progress | None = None) -> None:
        """Upload a local file as object ``sha1``.

        An object already present is success. If ``src`` does not hash to ``sha1`` the
        zone must raise :class:`~kachery_flows.errors.CorruptObjectError` and publish
        nothing.
        """

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Yield the hashes of all objects in the zone (in no particular order)."""

    @abstractmethod
    def delete(self, sha1: str) -> None:
        """Remove an object (absent object: success)."""

    @abstractmethod
    def get_ref(self, name: str) -> str | None:
        """Read a ref's text (None if unset); a ref longer than :data:`MAX_REF_BYTES` or
        not UTF-8 is a :class:`~kachery_flows.errors.ZoneError` (see :func:`decode_ref`)."""

    @abstractmethod
    def set_ref(self, name: str, value: str | None) -> None:
        """Set a ref atomically (last writer wins); ``None`` removes it."""

    def _require_writable(self, what: str) -> None:
        if not self.writable:
            raise ZonePermissionError(f"zone {self.name} is read-only: cannot {what}")

    def _require_listable(self) -> None:
        if not self.listable:
            raise ZoneError(f"zone {self.name} cannot list its objects")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
