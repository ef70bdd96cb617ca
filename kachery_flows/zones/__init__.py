"""Zones: shared directories, S3/fsspec buckets and read-only HTTP mirrors.

``LocalZone`` is imported eagerly (it needs nothing beyond the standard library);
``HttpZone`` (requests) and ``FsspecZone`` (fsspec, s3fs) are imported on first use, so
``import kachery_flows`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._open import load_zones_file, open_zone
from .base import Zone, object_key, ref_key, validate_ref_name
from .local import LocalZone

if TYPE_CHECKING:
    from .fsspec import FsspecZone, s3_storage_options
    from .http import HttpZone

__all__ = [
    "FsspecZone",
    "HttpZone",
    "LocalZone",
    "Zone",
    "load_zones_file",
    "object_key",
    "open_zone",
    "ref_key",
    "s3_storage_options",
    "validate_ref_name",
]

_LAZY = {
    "FsspecZone": ".fsspec",
    "s3_storage_options": ".fsspec",
    "HttpZone": ".http",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
