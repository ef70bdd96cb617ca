"""``KacherySerializer``: Prefect result records that hold a ``sha1://`` URI, not the data.

What ``dumps`` returns (Prefect stores it as the record's ``"result"`` string):

=====================================  ==================================================
value                                  record text
=====================================  ==================================================
``np.ndarray`` (non-object dtype)      ``sha1://<hash>?label=<task>.npy`` (npy object)
JSON that round-trips exactly          ``sha1://<hash>?label=<task>.json`` (canonical JSON)
``bytes``                              ``sha1://<hash>?label=<task>`` (raw bytes)
anything else                          ``sha1://<hash>?label=<task>.pkl`` (cloudpickle)
a :class:`~kachery_flows.Ref`          ``{"codec":...,"ref":"sha1://...","zone":...}``
=====================================  ==================================================

The object is an ordinary store object (uploaded to the zone like ``store_*``), so
``kachery-flows gc`` never collects it: gc cannot see Prefect's records. A Ref result is
written into the record as it is, so a task that returns a Ref persists ~100 bytes.

``loads`` fetches the object (through the zone if it is not local), checks it, and decodes
it; arrays come back as writable ``np.ndarray`` objects over a copy-on-write memory map
(like the array a task returns on its first run; the stored object never changes). A
missing or corrupt object raises
:class:`~kachery_flows.errors.ObjectNotFoundError`, and so does a Ref result whose object
is gone: Prefect's cache check then reports "no entry" and the task runs again (this
needs the default record layout, i.e. no ``key_storage`` on the cache policy).

Pickles follow the memo trust rule (``SECURITY.md``): ``loads`` unpickles a ``.pkl`` result
only if this store pickled those bytes itself (``dumps`` marks them), or the store trusts
its zone's pickles (``KACHERY_FLOWS_TRUST_ZONE_PICKLES=1`` or ``"trust_pickles": true`` in
``zones.json``). Any other pickle raises :class:`~kachery_flows.errors.UnsafePickleError`
before a byte of it is read, and Prefect runs the task again: records from a shared result
directory or zone cannot make this process run code. Arrays, JSON and bytes need no trust.

Records cannot choose their reader's store either: the store is the serializer's ``store=``
(set in code, never written to records) or the reading process's default store, and a
record naming a ``root`` or ``zone`` is refused (Prefect then runs the task again).
"""

from __future__ import annotations

import json
from typing import Any

from prefect.context import TaskRunContext
from prefect.serializers import Serializer
from pydantic import ConfigDict, Field, model_validator

from .. import codecs
from .._results import MISS, load_value, put_value
from ..action_cache import action_cache
from ..errors import DecodeError, ObjectNotFoundError, UnsafePickleError
from ..store import Store, get_default_store
from ..uri import Ref, parse_uri
from ._lineage import note_task_result

__all__ = ["KacherySerializer"]


def _stem() -> str:
    """The label stem of a result: the running task's function name, else ``result``."""
    ctx = TaskRunContext.get()
    name = getattr(getattr(ctx.task, "fn", None), "__name__", "") if ctx is not None else ""
    return name if isinstance(name, str) and name.isidentifier() else "result"


def _encode_ref(ref: Ref) -> bytes:
    return codecs.encode_json({"codec": ref.codec, "ref": ref.uri, "zone": ref.zone})


def decode_ref(blob: bytes) -> Ref:
    """The Ref of a record written by :meth:`KacherySerializer.dumps` for a Ref result."""
    try:
        doc = json.loads(blob)
        ref = parse_uri(doc["ref"])
        return Ref(ref.sha1, ref.label, doc["codec"], doc["zone"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a kachery Ref record: {blob[:200]!r} ({exc})") from exc


_RECORD_STORE_KEYS = ("root", "zone")


class KacherySerializer(Serializer):
    """A Prefect result serializer that stores results in kachery (``type="kachery"``).

    Use it as ``@task(result_serializer=KacherySerializer())`` (or through
    :func:`~kachery_flows.prefect.kachery_task`), or for every task and flow with
    Prefect's settings alone: ``PREFECT_RESULTS_DEFAULT_SERIALIZER=kachery`` plus
    ``PREFECT_PLUGINS_ENABLED=true`` (the plugin registers this class in every process
    that imports Prefect; see ``docs/prefect.md``). The record Prefect writes then holds
    only the result's URI; the bytes live in the kachery store and its zone, deduplicated
    by content.

    Parameters
    ----------
    store:
        The :class:`~kachery_flows.Store` to write to and read from; default: the default
        store of the process that runs the task or reads the record (``KACHERY_CLOUD_DIR``,
        ``KACHERY_ZONE``), so each machine uses its own cache. It is never written into
        records: a record cannot choose the store its reader reads (a record naming a
        ``root`` or ``zone`` is refused, and Prefect runs the task again).
    artifact:
        Publish a Prefect markdown artifact for every persisted result (URI, size, codec,
        cache key, how to load it): visible on the task run's page in Prefect's UI.
        Costs one API call per result; off by default.

    Examples
    --------
    >>> from kachery_flows.prefect import KacherySerializer
    >>> ser = KacherySerializer()
    >>> ser.loads(ser.dumps({"a": [1, 2]}))
    {'a': [1, 2]}
    >>> ser.model_dump()
    {'type': 'kachery', 'artifact': False}
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    type: str = Field(default="kachery", frozen=True)
    artifact: bool = False
    store: Store | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_record_stores(cls, data: Any) -> Any:
        """Records of earlier versions hold ``"root": null, "zone": null``; any other value
        would let a record pick what its reader opens."""
        if isinstance(data, dict) and any(k in data for k in _RECORD_STORE_KEYS):
            named = {k: data[k] for k in _RECORD_STORE_KEYS if data.get(k) is not None}
            if named:
                raise ValueError(
                    f"this kachery result record names a store ({named}); records cannot "
                    "choose the store their reader opens, so it is refused and the task "
                    "runs again. Readers use their own KACHERY_CLOUD_DIR / KACHERY_ZONE."
                )
            data = {k: v for k, v in data.items() if k not in _RECORD_STORE_KEYS}
        return data

    def get_store(self) -> Store:
        """The :class:`~kachery_flows.Store` results are written to and read from."""
        return self.store if self.store is not None else get_default_store()

    def dumps(self, obj: Any) -> bytes:
        """Store ``obj`` (unless it is a Ref) and return the record text (see module docs)."""
        store = self.get_store()
        if isinstance(obj, Ref):
            note_task_result(store, obj, obj)
            blob = _encode_ref(obj)
            ref = obj
        else:
            ref = put_value(store, obj, _stem())
            note_task_result(store, ref, obj)
            if ref.codec == "pkl":
                action_cache(store).trust(ref.sha1)
            blob = ref.uri.encode("ascii")
        if self.artifact:
            from ._artifact import publish_result_artifact

            publish_result_artifact(store, ref, ref.codec or ref.guess_codec() or "bytes")
        return blob

    def loads(self, blob: bytes) -> Any:
        """Fetch, check and decode what :meth:`dumps` returned.

        Arrays come back as writable ``np.ndarray`` objects, like the array a task returns on
        its first run (so Prefect's own ``INPUTS`` policy keys a downstream task alike on
        both runs), backed by a private copy-on-write memory map: pages load lazily, writes
        stay in the process and the stored object never changes.

        Raises :class:`~kachery_flows.errors.ObjectNotFoundError` when the object is
        missing everywhere or corrupt, :class:`~kachery_flows.errors.DecodeError` when it
        is intact but cannot be decoded here (e.g. a pickled class that this process cannot
        import), and :class:`~kachery_flows.errors.UnsafePickleError` for a pickle this
        store may not unpickle (see the module docs); Prefect then recomputes the task.
        """
        store = self.get_store()
        if blob[:1] == b"{":
            ref = decode_ref(blob)
            if not store.exists(ref):
                raise ObjectNotFoundError(
                    f"the Ref {ref.uri} in this Prefect result is missing from {store}; "
                    "the task runs again",
                    uri=ref.uri,
                )
            return ref
        ref = parse_uri(blob.decode("ascii"))
        codec = ref.guess_codec() or "bytes"
        cache = action_cache(store)
        if codec == "pkl" and not cache.trusts_pickle(ref.sha1):
            raise UnsafePickleError(
                f"not unpickling the Prefect result {ref.uri}: this store did not pickle it "
                "(it came from a shared result directory or zone), so the task runs again. "
                "If you trust everyone who can write there, set "
                'KACHERY_FLOWS_TRUST_ZONE_PICKLES=1 or "trust_pickles": true for the zone '
                "in zones.json (see SECURITY.md)."
            )
        try:
            value = load_value(store, ref, codec, trusts_pickle=cache.trusts_pickle)
        except DecodeError as exc:
            raise DecodeError(
                f"the result object {ref.uri} in {store} is intact but could not be "
                f"decoded as {codec} in this process (e.g. its pickled class cannot be "
                f"imported or constructed here: {exc}); it stays in the store and the task "
                "runs again"
            ) from exc
        if value is MISS:
            raise ObjectNotFoundError(
                f"the result object {ref.uri} is missing or corrupt in {store}; the task "
                "runs again (a corrupt local copy was moved to the quarantine)",
                uri=ref.uri,
            )
        if codec == "npy":  # a plain ndarray over a private (copy-on-write) memory map
            import numpy as np

            return np.asarray(np.load(value.filename, mmap_mode="c", allow_pickle=False))
        return value
