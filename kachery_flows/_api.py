"""Module-level functions on the default store (built from the environment).

Same names and URIs as kachery-cloud's ``store_*``/``load_*``; unlike kachery-cloud, a
missing object raises :class:`~kachery_flows.errors.ObjectNotFoundError` instead of
returning ``None``.
"""

from __future__ import annotations

import os
from typing import Any

from .store import get_default_store
from .uri import Ref

__all__ = [
    "exists",
    "load_bytes",
    "load_file",
    "load_json",
    "load_npy",
    "load_pkl",
    "load_text",
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

PathLike = str | os.PathLike[str]


def store_file(path: PathLike, *, label: str | None = None) -> str:
    """Store a file's bytes; return ``sha1://<hash>[?label=...]`` (uploads to the zone)."""
    return get_default_store().store_file(path, label)


def store_text(text: str, *, label: str | None = None) -> str:
    """Store text (UTF-8); return its URI."""
    return get_default_store().store_text(text, label)


def store_json(obj: Any, *, label: str | None = None) -> str:
    """Store ``obj`` as kachery-canonical JSON (sorted keys, compact); return its URI."""
    return get_default_store().store_json(obj, label)


def store_npy(array: Any, *, label: str | None = None) -> str:
    """Store an array in ``.npy`` format (hashed while written); return its URI."""
    return get_default_store().store_npy(array, label)


def store_pkl(obj: Any, *, label: str | None = None) -> str:
    """Store ``obj`` as a protocol-4 pickle; return its URI."""
    return get_default_store().store_pkl(obj, label)


def store_file_local(path: PathLike, *, label: str | None = None) -> str:
    """Like :func:`store_file` but never uploads to the zone."""
    return get_default_store().store_file(path, label, local=True)


def store_text_local(text: str, *, label: str | None = None) -> str:
    """Like :func:`store_text` but never uploads to the zone."""
    return get_default_store().store_text(text, label, local=True)


def store_json_local(obj: Any, *, label: str | None = None) -> str:
    """Like :func:`store_json` but never uploads to the zone."""
    return get_default_store().store_json(obj, label, local=True)


def store_npy_local(array: Any, *, label: str | None = None) -> str:
    """Like :func:`store_npy` but never uploads to the zone."""
    return get_default_store().store_npy(array, label, local=True)


def store_pkl_local(obj: Any, *, label: str | None = None) -> str:
    """Like :func:`store_pkl` but never uploads to the zone."""
    return get_default_store().store_pkl(obj, label, local=True)


def load_file(
    uri: str | Ref, *, dest: PathLike | None = None, verify: bool = False
) -> str:
    """Local path of the object (fetched and verified from the zone if needed)."""
    return get_default_store().load_file(uri, dest=dest, verify=verify)


def load_bytes(
    uri: str | Ref, start: int | None = None, end: int | None = None, *, verify: bool = False
) -> bytes:
    """The object's bytes, or the range ``[start, end)``."""
    return get_default_store().load_bytes(uri, start, end, verify=verify)


def load_text(uri: str | Ref, *, verify: bool = False) -> str:
    """Load a text object."""
    return get_default_store().load_text(uri, verify=verify)


def load_json(uri: str | Ref, *, verify: bool = False) -> Any:
    """Load a JSON object."""
    return get_default_store().load_json(uri, verify=verify)


def load_npy(uri: str | Ref, *, mmap_mode: str | None = None, verify: bool = False) -> Any:
    """Load an array; ``mmap_mode='r'`` memory-maps it read-only."""
    return get_default_store().load_npy(uri, mmap_mode=mmap_mode, verify=verify)


def load_pkl(uri: str | Ref, *, trusted: bool = False, verify: bool = False) -> Any:
    """Load a pickle; only safe types unless ``trusted=True`` (pickle can run code)."""
    return get_default_store().load_pkl(uri, trusted=trusted, verify=verify)


def exists(uri: str | Ref) -> bool:
    """Whether the object is in the local store or the configured zone."""
    return get_default_store().exists(uri)
