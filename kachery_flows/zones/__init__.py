"""Zones: shared directories, S3/fsspec buckets, read-only HTTP mirrors, the kachery network.

A zone is opened from a URL (or a ``zones.json`` name) by :func:`open_zone`; the zone
registry maps the URL's scheme to the zone class, imported only when a zone of that
scheme is opened, so ``import kachery_flows`` stays light. Third-party zones register a
scheme through the entry-point group ``kachery_flows.zones`` (or :func:`register_zone`)
and prove themselves with :class:`kachery_flows.testing.ZoneTests`; see ``docs/zones.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._layout import object_key
from ._open import load_zones_file, open_zone
from ._options import ZoneConfigError, check_options, retry_option
from ._registry import ENTRY_POINT_GROUP, register_zone, zone_class
from .base import Zone, ref_key, validate_ref_name
from .local import LocalZone

if TYPE_CHECKING:
    from .fsspec import FsspecZone, s3_storage_options
    from .http import HttpZone
    from .kachery_network import KacheryNetworkZone, network_zone_for

__all__ = [
    "ClientKeys",
    "ENTRY_POINT_GROUP",
    "FsspecZone",
    "HttpZone",
    "KacheryNetworkZone",
    "LegacyGateway",
    "LocalZone",
    "Zone",
    "ZoneConfigError",
    "check_options",
    "load_zones_file",
    "network_zone_for",
    "object_key",
    "open_zone",
    "ref_key",
    "register_zone",
    "retry_option",
    "s3_storage_options",
    "validate_ref_name",
    "zone_class",
]

_LAZY = {
    "FsspecZone": ".fsspec",
    "s3_storage_options": ".fsspec",
    "HttpZone": ".http",
    "KacheryNetworkZone": ".kachery_network",
    "LegacyGateway": "._kachery_gateway",
    "ClientKeys": "._kachery_gateway",
    "network_zone_for": ".kachery_network",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
