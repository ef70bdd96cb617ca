"""kachery-flows: share and reuse workflow results by content hash (``sha1://`` URIs).

Byte-compatible with kachery-cloud: the same objects, hashes, URIs and
``~/.kachery-cloud`` layout. Heavy integrations live in submodules that are imported only
on demand: ``kachery_flows.prefect`` and ``kachery_flows.dask``.
"""

from __future__ import annotations

from ._api import (
    exists,
    load_bytes,
    load_file,
    load_json,
    load_npy,
    load_pkl,
    load_text,
    store_file,
    store_file_local,
    store_json,
    store_json_local,
    store_npy,
    store_npy_local,
    store_pkl,
    store_pkl_local,
    store_text,
    store_text_local,
)
from ._retry import RetryPolicy
from ._version import __version__
from .errors import (
    CorruptObjectError,
    DecodeError,
    InvalidRefNameError,
    InvalidURIError,
    KacheryError,
    ManifestError,
    ObjectNotFoundError,
    StoreWriteError,
    UnhashableArgumentError,
    UnsafePickleError,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
)
from .lineage import lineage
from .memoize import kachery_cached
from .store import Store, VerifyReport, get_default_store
from .uri import Ref, format_uri, parse_uri

__all__ = [
    "CorruptObjectError",
    "DecodeError",
    "InvalidRefNameError",
    "InvalidURIError",
    "KacheryError",
    "ManifestError",
    "ObjectNotFoundError",
    "Ref",
    "RetryPolicy",
    "Store",
    "StoreWriteError",
    "UnhashableArgumentError",
    "UnsafePickleError",
    "VerifyReport",
    "ZoneError",
    "ZonePermissionError",
    "ZoneUnavailableError",
    "__version__",
    "exists",
    "format_uri",
    "get_default_store",
    "kachery_cached",
    "lineage",
    "load_bytes",
    "load_file",
    "load_json",
    "load_npy",
    "load_pkl",
    "load_text",
    "parse_uri",
    "store_file",
    "store_file_local",
    "store_json",
    "store_json_local",
    "store_npy",
    "store_npy_local",
    "store_pkl",
    "store_pkl_local",
    "store_text",
    "store_text_local",
]
