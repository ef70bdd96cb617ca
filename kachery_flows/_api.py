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
    """Store a file's bytes; return ``sha1://<hash>[?label=...]`` (uploads to the zone).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("hello")
    >>> kf.store_file(path, label="notes.txt")
    'sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?label=notes.txt'
    """
    return get_default_store().store_file(path, label)


def store_text(text: str, *, label: str | None = None) -> str:
    """Store text (UTF-8); return its URI.

    Examples
    --------
    >>> kf.store_text("hello")
    'sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d'
    """
    return get_default_store().store_text(text, label)


def store_json(obj: Any, *, label: str | None = None) -> str:
    """Store ``obj`` as kachery-canonical JSON (sorted keys, compact); return its URI.

    The bytes, and so the URI, are exactly kachery-cloud's for the same object.

    Examples
    --------
    >>> uri = kf.store_json({"fs": 30000.0, "channels": 384}, label="meta.json")
    >>> kf.load_bytes(uri)
    b'{"channels":384,"fs":30000.0}'
    """
    return get_default_store().store_json(obj, label)


def store_npy(array: Any, *, label: str | None = None) -> str:
    """Store an array in ``.npy`` format (hashed while written); return its URI.

    Examples
    --------
    >>> uri = kf.store_npy(np.arange(3.0), label="ramp.npy")
    >>> uri
    'sha1://...?label=ramp.npy'
    >>> kf.load_npy(uri)
    array([0., 1., 2.])
    """
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


def load_file(uri: str | Ref, *, dest: PathLike | None = None, verify: bool = False) -> str:
    """Local path of the object (fetched and verified from the zone if needed)."""
    return get_default_store().load_file(uri, dest=dest, verify=verify)


def load_bytes(
    uri: str | Ref, start: int | None = None, end: int | None = None, *, verify: bool = False
) -> bytes:
    """The object's bytes, or the range ``[start, end)``."""
    return get_default_store().load_bytes(uri, start, end, verify=verify)


def load_text(uri: str | Ref, *, verify: bool = False) -> str:
    """Load a text object.

    Examples
    --------
    >>> kf.load_text(kf.store_text("hello"))
    'hello'
    """
    return get_default_store().load_text(uri, verify=verify)


def load_json(uri: str | Ref, *, verify: bool = False) -> Any:
    """Load a JSON object.

    Examples
    --------
    >>> kf.load_json(kf.store_json({"b": [1, 2.5], "a": None}))
    {'a': None, 'b': [1, 2.5]}
    """
    return get_default_store().load_json(uri, verify=verify)


def load_npy(uri: str | Ref, *, mmap_mode: str | None = None, verify: bool = False) -> Any:
    """Load an array; ``mmap_mode='r'`` memory-maps it read-only.

    Examples
    --------
    >>> x = kf.load_npy(kf.store_npy(np.zeros((2, 3))), mmap_mode="r")
    >>> x.shape, x.flags.writeable
    ((2, 3), False)
    """
    return get_default_store().load_npy(uri, mmap_mode=mmap_mode, verify=verify)


def load_pkl(uri: str | Ref, *, trusted: bool = False, verify: bool = False) -> Any:
    """Load a pickle; only safe types unless ``trusted=True`` (pickle can run code).

    Examples
    --------
    >>> kf.load_pkl(kf.store_pkl({"x": (1, 2)}))
    {'x': (1, 2)}
    """
    return get_default_store().load_pkl(uri, trusted=trusted, verify=verify)


def exists(uri: str | Ref) -> bool:
    """Whether the object is in the local store or the configured zone.

    Examples
    --------
    >>> kf.exists("sha1://0123456789abcdef0123456789abcdef01234567")
    False
    """
    return get_default_store().exists(uri)
