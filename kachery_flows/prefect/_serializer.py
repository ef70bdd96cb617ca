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
it; arrays come back memory-mapped read-only. A missing or corrupt object raises
:class:`~kachery_flows.errors.ObjectNotFoundError`, and so does a Ref result whose object
is gone: Prefect's cache check then reports "no entry" and the task runs again (this
needs the default record layout, i.e. no ``key_storage`` on the cache policy).

Pickles follow the memo trust rule (``SECURITY.md``): ``loads`` unpickles a ``.pkl`` result
only if this store pickled those bytes itself (``dumps`` marks them), or the store trusts
its zone's pickles (``KACHERY_FLOWS_TRUST_ZONE_PICKLES=1`` or ``"trust_pickles": true`` in
``zones.json``). Any other pickle raises :class:`~kachery_flows.errors.UnsafePickleError`
before a byte of it is read, and Prefect runs the task again: records from a shared result
directory or zone cannot make this process run code. Arrays, JSON and bytes need no trust.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from prefect.context import TaskRunContext
from prefect.serializers import Serializer
from pydantic import Field

from .. import codecs
from .._results import MISS, load_value, put_value
from ..errors import ObjectNotFoundError, UnsafePickleError
from ..records import action_cache
from ..store import Store, get_default_store
from ..uri import Ref, parse_uri
from ._lineage import note_task_result

__all__ = ["KacherySerializer"]


@functools.lru_cache(maxsize=16)
def _open_store(root: str | None, zone: str | None) -> Store:
    return Store(root, zone=zone)


def store_for(root: str | None, zone: str | None) -> Store:
    """The store named by a serializer's or block's ``root``/``zone`` fields: the default
    store (read from the environment of the process at call time) when both are None."""
    if root is None and zone is None:
        return get_default_store()
    return _open_store(root, zone)


def _stem() -> str:
    """The label stem of a result: the running task's function name, else ``result``."""
    ctx = TaskRunContext.get()
    name = getattr(getattr(ctx.task, "fn", None), "__name__", "") if ctx is not None else ""
    return name if isinstance(name, str) and name.isidentifier() else "result"


def _encode_ref(ref: Ref) -> bytes:
    return codecs.encode_json({"codec": ref.codec, "ref": ref.uri, "zone": ref.zone})


def _decode_ref(blob: bytes) -> Ref:
    try:
        doc = json.loads(blob)
        ref = parse_uri(doc["ref"])
        return Ref(ref.sha1, ref.label, doc["codec"], doc["zone"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a kachery Ref record: {blob[:200]!r} ({exc})") from exc


class KacherySerializer(Serializer):
    """A Prefect result serializer that stores results in kachery (``type="kachery"``).

    Use it as ``@task(result_serializer=KacherySerializer())`` (or through
    :func:`~kachery_flows.prefect.kachery_task`). The record Prefect writes then holds only
    the result's URI; the bytes live in the kachery store and its zone, deduplicated by
    content. Every process that reads such a record must have imported
    ``kachery_flows.prefect`` (Prefect does not import serializers by itself).

    Parameters
    ----------
    root:
        Store root to use; default: the default store of the process that runs the task
        or reads the record (``KACHERY_CLOUD_DIR``), so each machine uses its own cache.
    zone:
        Zone spec (as in ``KACHERY_ZONE``) to upload results to and fetch them from;
        default: the default store's zone. Both fields are written into every record.
    """

    type: str = Field(default="kachery", frozen=True)
    root: str | None = None
    zone: str | None = None

    def get_store(self) -> Store:
        """The :class:`~kachery_flows.Store` results are written to and read from."""
        return store_for(self.root, self.zone)

    def dumps(self, obj: Any) -> bytes:
        """Store ``obj`` (unless it is a Ref) and return the record text (see module docs)."""
        if isinstance(obj, Ref):
            note_task_result(self.get_store(), obj, obj)
            return _encode_ref(obj)
        store = self.get_store()
        ref = put_value(store, obj, _stem())
        note_task_result(store, ref, obj)
        if ref.codec == "pkl":
            action_cache(store).trust(ref.sha1)
        return ref.uri.encode("ascii")

    def loads(self, blob: bytes) -> Any:
        """Fetch, check and decode what :meth:`dumps` returned.

        Raises :class:`~kachery_flows.errors.ObjectNotFoundError` when the object is
        missing everywhere or corrupt, and :class:`~kachery_flows.errors.UnsafePickleError`
        for a pickle this store may not unpickle (see the module docs); Prefect then
        recomputes the task.
        """
        store = self.get_store()
        if blob[:1] == b"{":
            ref = _decode_ref(blob)
            if not store.exists(ref):
                raise ObjectNotFoundError(
                    f"the Ref {ref.uri} in this Prefect result is missing from {store}; "
                    "the task runs again", uri=ref.uri,
                )
            return ref
        ref = parse_uri(blob.decode("ascii"))
        codec = ref.guess_codec() or "bytes"
        if codec == "pkl" and not action_cache(store).trusts_pickle(ref.sha1):
            raise UnsafePickleError(
                f"not unpickling the Prefect result {ref.uri}: this store did not pickle it "
                "(it came from a shared result directory or zone), so the task runs again. "
                "If you trust everyone who can write there, set "
                "KACHERY_FLOWS_TRUST_ZONE_PICKLES=1 or \"trust_pickles\": true for the zone "
                "in zones.json (see SECURITY.md)."
            )
        value = load_value(store, ref, codec)
        if value is MISS:
            raise ObjectNotFoundError(
                f"the result object {ref.uri} is missing or corrupt in {store}; the task "
                "runs again (a corrupt local copy was moved to the quarantine)", uri=ref.uri,
            )
        return value
