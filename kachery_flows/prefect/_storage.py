"""``KacheryStorage``: a Prefect result-storage block backed by a kachery store and zone.

Prefect writes each result record under its cache key. This block stores the record's
bytes as a kachery object and points the name ``<namespace>/<key>`` at its URI, in the
store's ref map: the zone's refs when the zone is writable and has refs (a shared
directory, an S3 bucket: then the whole Prefect cache is shared through the zone alone,
with no shared result directory), else ``<root>/.kachery-flows/refs/``.

Prefect's rules for storage blocks, all followed here:

* ``@task(result_storage=...)`` and ``@flow(result_storage=...)`` accept only a *saved*
  block (``KacheryStorage(...).save("name")``, or the slug ``"kachery-storage/name"``);
* Prefect calls ``read_path(key, _sync=True)`` and ``aread_path(key)``; ``_resolve_path`` is
  the identity, so keys are used as they are;
* a policy's ``key_storage`` must not share a namespace with the result storage (Prefect
  writes metadata and result under one key): give it another ``namespace``;
* the ``prefect.collections`` entry point lets ``Block.load("kachery-storage/name")`` work in
  a process that never imported ``kachery_flows.prefect``.

Record objects are ordinary store objects (never collected by ``kachery-flows gc``).

The block keeps only what the kachery serializer writes: a record (or a ``key_storage``
metadata document) whose serializer is ``{"type": "kachery"}`` with no store named, or a
bare kachery payload (a ``sha1://`` URI or a Ref document). Anything else raises
:class:`RefusedRecordError`, on write (Prefect logs it; the result is not cached) and on
read (Prefect's cache check counts it as no entry and the task runs again): a record
planted in a shared zone cannot make a reader unpickle it with Prefect's pickle serializer.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import anyio.to_thread
from prefect.filesystems import WritableFileSystem
from pydantic import Field, ValidationError

from .._results import MISS, load_value
from ..errors import KacheryError, ObjectNotFoundError
from ..refmap import RefMap
from ..store import Store, get_default_store
from ..uri import parse_uri
from ..zones.base import validate_ref_name
from ._serializer import KacherySerializer, decode_ref

__all__ = ["KacheryStorage", "RefusedRecordError"]


class RefusedRecordError(KacheryError, ValueError):
    """:class:`KacheryStorage` holds only what the kachery serializer writes; this record
    (or payload) came from another serializer, or names a store."""


@functools.lru_cache(maxsize=16)
def _open_store(root: str | None, zone: str | None) -> Store:
    return Store(root, zone=zone)


def store_for(root: str | None, zone: str | None) -> Store:
    """The store named by a block's ``root``/``zone`` fields: the default store (read
    from the environment of the process at call time) when both are None."""
    if root is None and zone is None:
        return get_default_store()
    return _open_store(root, zone)


def _serializer_is_kachery(serializer: Any) -> bool:
    if not isinstance(serializer, dict) or serializer.get("type") != "kachery":
        return False
    try:
        KacherySerializer.model_validate(serializer)
    except ValidationError:
        return False
    return True


def _is_kachery_payload(content: bytes) -> bool:
    try:
        if content[:1] == b"{":
            decode_ref(content)
        else:
            parse_uri(content.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def check_record(content: bytes, name: str) -> bytes:
    """``content`` if it is a kachery record, metadata document or payload (see the
    module docs); else :class:`RefusedRecordError`."""
    try:
        doc = json.loads(content)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        serializer = doc["metadata"].get("serializer")
    elif isinstance(doc, dict) and "serializer" in doc:
        serializer = doc["serializer"]
    elif _is_kachery_payload(content):
        return content
    else:
        serializer = None
    if not _serializer_is_kachery(serializer):
        shown = json.dumps(serializer)[:200] if serializer is not None else "none"
        raise RefusedRecordError(
            f"the Prefect record {name!r} was not written by the kachery serializer "
            f"(serializer: {shown}); KacheryStorage keeps only kachery records, so it is "
            "refused and the task runs again. Use KacheryStorage with "
            "result_serializer=KacherySerializer() or PREFECT_RESULTS_DEFAULT_SERIALIZER="
            "kachery (docs/prefect.md)."
        )
    return content


class KacheryStorage(WritableFileSystem):
    """Prefect result storage in a kachery store (block type slug ``kachery-storage``).

    Parameters
    ----------
    root:
        Store root; default: each process's default store (``KACHERY_CLOUD_DIR``).
    zone:
        Zone spec (as in ``KACHERY_ZONE``); default: the default store's zone. With a
        writable zone the record map lives in the zone, shared by every machine.
    namespace:
        Prefix of the record names (``/``-separated letters, digits, ``-``, ``_``, ``.``).
        Use a different one for a cache policy's ``key_storage``.
    """

    _block_type_name = "Kachery Storage"
    _description = "Prefect results in a kachery content-addressed store and its zone."

    root: str | None = Field(default=None, description="Store root (default: KACHERY_CLOUD_DIR)")
    zone: str | None = Field(default=None, description="Zone spec (default: KACHERY_ZONE)")
    namespace: str = Field(default="prefect-results", description="Prefix of record names")

    def get_store(self) -> Store:
        """The :class:`~kachery_flows.Store` records are written to and read from."""
        return store_for(self.root, self.zone)

    def _name(self, path: str) -> str:
        return validate_ref_name(f"{self.namespace}/{path}")

    def _resolve_path(self, path: str) -> str:
        return path

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:  # type: ignore[override]
        """The bytes written under ``path``.

        Raises ``FileNotFoundError`` (an
        :class:`~kachery_flows.errors.ObjectNotFoundError` when the name exists but its
        object is missing or corrupt) when there is nothing to read.
        """
        store = self.get_store()
        name = self._name(path)
        uri = RefMap(store).get(name)
        if uri is None:
            raise FileNotFoundError(f"no Prefect record {name!r} in {store}")
        ref = parse_uri(uri.strip())
        data = load_value(store, ref, "bytes")
        if data is MISS:
            raise ObjectNotFoundError(
                f"the Prefect record {name!r} points at {ref.uri}, which is missing or "
                f"corrupt in {store}; the task runs again",
                uri=ref.uri,
            )
        assert isinstance(data, bytes)
        return check_record(data, name)

    def write_path(  # type: ignore[override]
        self, path: str, content: bytes, _sync: bool | None = None
    ) -> str:
        """Store ``content`` and point ``path`` at it; returns the object's URI."""
        store = self.get_store()
        name = self._name(path)
        check_record(content, name)
        ref = store.put_bytes(content)
        RefMap(store).set(name, ref.uri)
        return ref.uri

    async def aread_path(self, path: str) -> bytes:
        """Async :meth:`read_path` (runs in a worker thread)."""
        return await anyio.to_thread.run_sync(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        """Async :meth:`write_path` (runs in a worker thread)."""
        return await anyio.to_thread.run_sync(self.write_path, path, content)
