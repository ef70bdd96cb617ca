"""Publishing one object to a kachery network zone (private).

kachery 2's three steps: ``POST /api/initiateFileUpload`` (with a proof-of-work token and
the API key) answers ``alreadyExists`` or a signed upload URL; the bytes are PUT there;
``POST /api/finalizeFileUpload`` records the upload. A refused signed URL is asked for
again once; transient failures are retried by the zone's policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorruptObjectError, ZoneError, ZonePermissionError, ZoneUnavailableError
from ..hashing import sha1_of_file
from ._knet_protocol import (
    KEY_HELP,
    SCRATCH_ZONE,
    UrlRefused,
    error_message,
    make_work_token,
    signed_url,
    transport_errors,
)

if TYPE_CHECKING:
    from .kachery_network import KacheryNetworkZone

__all__ = ["publish"]

_PUBLIC_ZONES = ("default", SCRATCH_ZONE)


def publish(zone: KacheryNetworkZone, src: Path, sha1: str) -> None:
    """Upload the file ``src`` as object ``sha1`` to ``zone`` (present already: success).

    :class:`~kachery_flows.errors.ZonePermissionError` without an API key (except for
    ``scratch``), :class:`~kachery_flows.errors.CorruptObjectError` if ``src`` does not
    hash to ``sha1``.
    """
    if not zone.api_key and zone.zone_name != SCRATCH_ZONE:
        raise ZonePermissionError(
            f"publishing sha1://{sha1} to kachery zone {zone.name} needs an API key "
            f"and KACHERY_API_KEY is not set. {KEY_HELP} To keep results local "
            "instead, use the *_local store functions or unset KACHERY_ZONE."
        )
    size = src.stat().st_size
    actual = sha1_of_file(src)
    if actual != sha1:
        raise CorruptObjectError(
            f"refusing to upload {src} as sha1://{sha1}: its bytes hash to {actual}"
        )
    initiate: dict[str, Any] = {
        "type": "initiateFileUploadRequest",
        "size": size,
        "hashAlg": "sha1",
        "hash": sha1,
        "zoneName": zone.zone_name,
        "workToken": make_work_token(sha1),
    }
    if zone.allow_public_zones and zone.zone_name in _PUBLIC_ZONES:
        initiate["allowPublicZones"] = True
    refreshed = False

    def attempt() -> dict[str, Any] | None:
        nonlocal refreshed
        answer = zone._post(
            f"{zone.base_url}/api/initiateFileUpload",
            initiate,
            f"initiateFileUpload at {zone.name}",
        )
        if answer.get("alreadyExists") is True:
            return None
        if answer.get("alreadyPending") is True:
            raise ZoneUnavailableError(f"another upload of sha1://{sha1} to {zone.name} is pending")
        url = signed_url(answer, "signedUploadUrl", f"initiateFileUpload at {zone.name}")
        object_key = answer.get("objectKey")
        if not isinstance(object_key, str) or not object_key:
            raise ZoneError(f"initiateFileUpload at {zone.name}: no objectKey in {answer!r:.300}")
        try:
            _upload(zone, url, src, size)
        except UrlRefused as exc:
            if refreshed:
                raise ZonePermissionError(
                    f"the bucket of {zone.name} refused the upload of sha1://{sha1} twice: {exc}"
                ) from None
            refreshed = True
            raise ZoneUnavailableError(
                f"signed upload URL refused ({exc}); asking for a fresh one"
            ) from None
        return {"objectKey": object_key}

    uploaded = zone.retry.call(attempt)
    if uploaded is None:
        return
    answer = zone._api(
        "finalizeFileUpload",
        {
            "type": "finalizeFileUploadRequest",
            "objectKey": uploaded["objectKey"],
            "hashAlg": "sha1",
            "hash": sha1,
            "zoneName": zone.zone_name,
            "size": size,
        },
    )
    if answer.get("success") is not True:
        raise ZoneError(
            f"finalizeFileUpload at {zone.name} did not report success for sha1://{sha1}: "
            f"{answer!r:.300}"
        )


def _upload(zone: KacheryNetworkZone, url: str, src: Path, size: int) -> None:
    what = f"upload to the bucket of {zone.name}"
    with open(src, "rb") as f, transport_errors(what):
        resp = zone._session().put(
            url,
            data=f,
            headers={"Content-Length": str(size)},
            timeout=zone.timeout,
            stream=True,
        )
    with resp:
        if resp.status_code in (401, 403):
            raise UrlRefused(f"HTTP {resp.status_code}: {error_message(resp)[:200]}")
        if not 200 <= resp.status_code < 300:
            raise zone._http_failure(what, resp)
