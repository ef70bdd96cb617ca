"""Zones: shared directories, S3/fsspec buckets and read-only HTTP mirrors."""

from __future__ import annotations

from pathlib import Path

from ..errors import ZoneError
from .base import Zone, object_key
from .local import LocalZone

__all__ = ["LocalZone", "Zone", "object_key", "open_zone"]


def open_zone(spec: str, *, root: Path | None = None) -> Zone:
    """Open the zone named by ``spec`` (as in ``KACHERY_ZONE``).

    ``file:///path`` or an absolute path opens a :class:`LocalZone`; ``kachery:<zone>``
    opens that zone of the kachery network
    (:class:`~kachery_flows.zones.kachery_network.KacheryNetworkZone`).
    """
    if spec.startswith("file://"):
        return LocalZone(spec[len("file://") :])
    if spec.startswith("/"):
        return LocalZone(spec)
    # --- kachery network zone (kachery:<zone name>) ---------------------------------
    if spec.startswith("kachery:"):
        from .kachery_network import KacheryNetworkZone

        return KacheryNetworkZone.from_spec(spec)
    # --- end kachery network zone ----------------------------------------------------
    raise ZoneError(
        f"cannot open zone {spec!r}: expected file:///path/to/zone or an absolute path"
    )
