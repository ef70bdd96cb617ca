"""The kachery-flows exception tree.

Every error the package raises on purpose derives from :class:`KacheryError`, and
mixes in the builtin exception a caller would naturally catch::

    KacheryError
    ├── InvalidURIError          (also ValueError)
    ├── InvalidRefNameError      (also ValueError)
    ├── ObjectNotFoundError      (also FileNotFoundError)
    ├── CorruptObjectError
    ├── DecodeError              (also ValueError)
    ├── ManifestError            (also ValueError)
    ├── StoreWriteError          (also OSError; errno kept, e.g. ENOSPC, EACCES)
    ├── ZoneError
    │   ├── ZoneUnavailableError (transient: retried, then raised)
    │   └── ZonePermissionError  (also PermissionError: 401/403, read-only zone)
    ├── UnsafePickleError
    └── UnhashableArgumentError  (also TypeError)

Messages name the URI, path or zone involved and say what to do next.
"""

from __future__ import annotations

import errno

__all__ = [
    "CorruptObjectError",
    "DecodeError",
    "InvalidRefNameError",
    "InvalidURIError",
    "KacheryError",
    "ManifestError",
    "ObjectNotFoundError",
    "StoreWriteError",
    "UnhashableArgumentError",
    "UnsafePickleError",
    "ZoneError",
    "ZonePermissionError",
    "ZoneUnavailableError",
]


class KacheryError(Exception):
    """Base class of every error raised by kachery-flows."""


class InvalidURIError(KacheryError, ValueError):
    """A string is not a valid kachery URI (raised before any file system access)."""


class InvalidRefNameError(KacheryError, ValueError):
    """A zone ref name is not '/'-separated segments of letters, digits, '-', '_' and '.'.

    Ref names become object keys and file paths, so anything that could escape the
    zone's ``refs/`` prefix (empty, ``.`` or ``..`` segments, backslashes, ...) is refused.
    """


class ObjectNotFoundError(KacheryError, FileNotFoundError):
    """No object with this hash exists in the local cache or the configured zone.

    ``detail`` is what a zone knows beyond "not here" (e.g. which kachery zones were
    searched), for the store to add to its own message; None when there is nothing more.
    """

    def __init__(self, message: str, *, uri: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri
        self.detail = detail

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptObjectError(KacheryError):
    """Bytes read for an object do not hash to the object's SHA-1.

    Nothing corrupt is ever returned to the caller or moved into the local cache.
    """

    def __init__(
        self, message: str, *, uri: str | None = None, actual_sha1: str | None = None
    ) -> None:
        super().__init__(message)
        self.uri = uri
        self.actual_sha1 = actual_sha1


class DecodeError(KacheryError, ValueError):
    """An object's bytes are intact but cannot be decoded with the requested codec."""


class ManifestError(KacheryError, ValueError):
    """A chunked-array manifest (:mod:`kachery_flows.dask`) is malformed, or an array chunk
    does not match it (shape or dtype), or a chunk computed for one does not match the
    array it belongs to.

    ``uri`` names the manifest (or chunk) concerned, when known.
    """

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri

    def __reduce__(self) -> tuple[object, ...]:
        # Keep ``uri`` when the error travels from a Dask worker to the client.
        return (type(self), self.args, {"uri": self.uri})


class StoreWriteError(KacheryError, OSError):
    """Writing an object failed (disk full, permission denied, read-only store, ...).

    ``errno`` and ``filename`` are those of the underlying :class:`OSError`; the store is
    left consistent: no partial object is ever visible under its final name.
    """

    def __str__(self) -> str:
        return str(self.strerror)

    @classmethod
    def from_os_error(cls, exc: OSError, what: str, path: object) -> StoreWriteError:
        """Wrap ``exc`` with a message saying what failed, where, and what to do."""
        hint = {
            errno.ENOSPC: "the disk is full; free space or point KACHERY_CLOUD_DIR elsewhere",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EACCES: "permission denied; check the store directory's owner and mode",
            errno.EPERM: "operation not permitted",
            errno.EROFS: "the store is on a read-only file system (it can still be read)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        return cls(exc.errno or errno.EIO, f"cannot {what} {path}: {hint}", str(path))


class ZoneError(KacheryError):
    """A zone (shared directory, S3 bucket, HTTP mirror) refused or failed a request."""


class ZoneUnavailableError(ZoneError):
    """A transient zone failure (connection error, timeout, 5xx) that outlived its retries."""


class ZonePermissionError(ZoneError, PermissionError):
    """The zone denied access (HTTP 401/403, read-only zone, missing credentials)."""


class UnsafePickleError(KacheryError):
    """A pickle the safe decoder will not build (a global or shape outside its
    allow-list), or one the store's trust rule does not let it unpickle.

    Pass ``trusted=True`` only for bytes you (or someone you trust) wrote.
    """


class UnhashableArgumentError(KacheryError, TypeError):
    """A memoized function received an argument that has no canonical content token."""
