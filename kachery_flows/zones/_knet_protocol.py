"""kachery 2's wire protocol, as the kachery network zone speaks it (private).

Proof-of-work tokens, the answers of ``findFile``, what a failed request means (transient,
permission, unknown zone or permanent), and reading a download's body within the size the
service announced. No state: :mod:`.kachery_network` holds the zone, :mod:`._knet_upload`
the three-step upload.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .._retry import transport_reason
from ..errors import ZoneError, ZonePermissionError, ZoneUnavailableError
from ._bounded import read_capped
from .base import Progress

__all__ = [
    "KEY_HELP",
    "SCRATCH_ZONE",
    "WORK_TOKEN_DIFFICULTY",
    "Found",
    "Missing",
    "UnknownZoneError",
    "UrlRefused",
    "check_work_token",
    "error_message",
    "found_in",
    "http_failure",
    "make_work_token",
    "signed_url",
    "transport_errors",
    "write_body",
]


@contextmanager
def transport_errors(what: str) -> Iterator[None]:
    """Map a ``requests`` failure inside the block to the zone's typed errors: a dropped
    connection or a timeout is transient (:class:`ZoneUnavailableError`, retried), any other
    request error is a :class:`ZoneError`; ``what`` names the request."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ZoneUnavailableError(f"{what}: {transport_reason(exc)}") from exc
    except requests.RequestException as exc:
        raise ZoneError(f"{what}: {exc}") from exc


#: Leading zero bits required of ``sha1(hash + workToken)`` (hard-coded in kachery 2).
WORK_TOKEN_DIFFICULTY = 13

#: The zone anyone may upload to, without an API key.
SCRATCH_ZONE = "scratch"
_CHUNK = 1 << 20
#: Server errors (HTTP 500 with these messages) that repeating cannot fix.
_PERMANENT_SERVER_ERRORS = (
    "Invalid work token",
    "exceeds maximum",
    "Zone not found",
    "not registered",
    "not authorized",
    "not allowed",
    "Invalid signature",
    "Bucket URI not set",
    "Credentials not set",
)
KEY_HELP = (
    "To get an API key: sign in with GitHub at https://kachery.vercel.app, fill in your "
    "name, email and research description on the settings page, and create an API key "
    "there; then `export KACHERY_API_KEY=<key>`. Uploads also need upload permission on "
    "the zone (ask its owner), or use the 'scratch' zone, which needs no key."
)


def check_work_token(sha1: str, token: str, difficulty: int = WORK_TOKEN_DIFFICULTY) -> bool:
    """Whether ``sha1(sha1 + token)`` starts with ``difficulty`` zero bits."""
    digest = hashlib.sha1((sha1 + token).encode("ascii")).digest()
    return int.from_bytes(digest, "big") >> (160 - difficulty) == 0


def make_work_token(sha1: str, difficulty: int = WORK_TOKEN_DIFFICULTY) -> str:
    """A proof-of-work token for uploading ``sha1``: 16 random hex digits that pass
    :func:`check_work_token` (about 8,000 SHA-1s, a few milliseconds, at difficulty 13)."""
    while True:
        token = os.urandom(8).hex()
        if check_work_token(sha1, token, difficulty):
            return token


@dataclass(frozen=True)
class Found:
    """Where an object can be downloaded: a signed URL, the size announced, who said so."""

    url: str
    size: int | None
    source: str


@dataclass(frozen=True)
class Missing:
    """The object is not in the zone (``reason`` says where it was looked for)."""

    reason: str


class UnknownZoneError(ZoneError):
    """kachery 2 has no zone of this name (an unported kachery-cloud zone, or a typo)."""


class UrlRefused(Exception):
    """The bucket refused a signed URL (expired or revoked): ask for a fresh one."""


def found_in(data: dict[str, Any], what: str, source: str) -> Found:
    """The :class:`Found` of a ``findFile`` answer with ``"found": true``."""
    size = data.get("size")
    return Found(
        signed_url(data, "url", what),
        size if isinstance(size, int) and size > 0 else None,
        source,
    )


def error_message(resp: requests.Response) -> str:
    """The service's explanation of a failure: at most 64 KiB of the body is read."""
    try:
        body = read_capped(resp, 64 << 10)
    except (ZoneError, requests.RequestException, OSError):
        return "(unreadable body)"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])[:500]
    return body[:500].decode("utf-8", "replace").strip() or "(empty body)"


def http_failure(what: str, resp: requests.Response, permission_hint: str) -> Exception:
    """The typed error for a failed request: transient (HTTP 5xx, 429) unless the message
    says repeating cannot help, a permission error (with ``permission_hint``), an unknown
    zone, or a plain :class:`ZoneError`."""
    message = error_message(resp)
    text = f"{what}: HTTP {resp.status_code} {resp.reason}: {message}"
    permanent = any(p.lower() in message.lower() for p in _PERMANENT_SERVER_ERRORS)
    if (resp.status_code >= 500 or resp.status_code == 429) and not permanent:
        return ZoneUnavailableError(text)
    if resp.status_code in (401, 403) or "API token" in message:
        return ZonePermissionError(f"{text}. {permission_hint}")
    if "Zone not found" in message:
        return UnknownZoneError(f"{text}. Check the zone name (kachery:<zone>)")
    return ZoneError(text)


def signed_url(data: dict[str, Any], key: str, what: str) -> str:
    """The signed bucket URL at ``data[key]`` (http or https only)."""
    url = data.get(key)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ZoneError(f"{what}: the service answered without a usable {key} ({url!r})")
    return url


def write_body(
    resp: requests.Response,
    dest: Path,
    size: int | None,
    what: str,
    progress: Progress | None = None,
) -> int:
    """Write a download's body to ``dest``; return the number of bytes written."""
    # One byte past the announced size is enough to prove the bytes wrong (the store
    # then rejects them by hash) and stops a server that never ends its body.
    limit = size + 1 if size is not None else None
    written = 0
    with open(dest, "wb") as f:
        try:
            for chunk in resp.iter_content(chunk_size=_CHUNK):
                if limit is not None and written + len(chunk) >= limit:
                    f.write(chunk[: limit - written])
                    return limit
                f.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise ZoneUnavailableError(
                f"{what}: the connection broke after {written} bytes"
            ) from exc
    return written
