"""What an fsspec backend's exception means for a zone (private to :mod:`.fsspec`).

Missing object, denied access, missing credentials, a transient failure worth retrying, or
a permanent zone error; anything else is not the zone's and is re-raised by the caller.
botocore and aiohttp are consulted only if they are already importable.
"""

from __future__ import annotations

import contextlib
import errno

from ..errors import (
    KacheryError,
    ObjectNotFoundError,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
)

__all__ = ["translate"]

# errno values that mean "try again" when an fsspec backend reports them (s3fs maps
# S3 500 to EREMOTEIO, 503/SlowDown to EBUSY and unknown server errors to EIO).
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EIO",
        "EREMOTEIO",
        "EBUSY",
        "EAGAIN",
        "ETIMEDOUT",
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "EPIPE",
        "ENETUNREACH",
        "EHOSTUNREACH",
    )
    if hasattr(errno, name)
)


def translate(exc: Exception, where: str) -> KacheryError | None:
    """The typed error an fsspec backend's exception means (``where`` names the zone and
    the operation), or None for an exception that is not the zone's (a bug: re-raised)."""
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(f"{where}: not found")
    if isinstance(exc, PermissionError):
        return ZonePermissionError(f"{where}: access denied ({exc})")
    kind = _classify_library_error(exc)
    if kind == "credentials":
        return ZonePermissionError(
            f"{where}: no usable credentials ({exc}); set AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or give the zone a profile"
        )
    if kind == "transient" or isinstance(exc, (TimeoutError, ConnectionError)):
        return ZoneUnavailableError(f"{where}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        if exc.errno in _TRANSIENT_ERRNOS:
            return ZoneUnavailableError(f"{where}: {exc}")
        return ZoneError(f"{where}: {exc}")
    return None


def _classify_library_error(exc: Exception) -> str | None:
    """'transient', 'credentials' or None, for botocore/aiohttp exceptions (if loaded)."""
    with contextlib.suppress(ImportError):
        from botocore import exceptions as boto

        if isinstance(
            exc, (boto.NoCredentialsError, boto.PartialCredentialsError, boto.ProfileNotFound)
        ):
            return "credentials"
        if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
            return "transient"
    with contextlib.suppress(ImportError):
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return "transient"
    return None
