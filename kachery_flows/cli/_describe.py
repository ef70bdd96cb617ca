"""What ``kachery-flows info`` shows for a memo key or a URI (as data: the text view is
:func:`kachery_flows.cli._memo.print_description`, ``--json`` prints it as it is)."""

from __future__ import annotations

from typing import Any

from ..action_cache import action_cache
from ..errors import ObjectNotFoundError
from ..records import read_record_object
from ..store import Store
from ..uri import is_sha1_hex

__all__ = ["describe"]


def describe(store: Store, text: str) -> dict[str, Any]:
    """What ``kachery-flows info`` shows for a memo key or a URI.

    A bare 40-hex memo key shows its entry and record; a URI shows where the object is,
    its record if it is one, and the records (known here) that produced it.
    """
    cache = action_cache(store)
    text = text.strip()
    if is_sha1_hex(text):
        entry = cache.get(text)
        if entry is not None:
            entry = cache.materialize(text, entry)  # the URIs shown must work
            return {
                "kind": "memo",
                "key": text,
                "record_uri": f"sha1://{entry.record}",
                "result_uri": entry.result_ref.uri,
                "result_present": cache.present(entry),
                "record": cache.read_record(entry),
            }
        try:
            info = store.info(f"sha1://{text}")
        except ObjectNotFoundError:
            raise ObjectNotFoundError(
                f"{text} is neither a memo key with an entry in this cache nor an object in "
                f"the store {store.root}",
                uri=f"sha1://{text}",
            ) from None
    else:
        info = store.info(text)
    sha1 = info["sha1"]
    info["kind"] = "object"
    info["cache_object"] = store.cache_mark_path(sha1).exists()
    record = read_record_object(store, sha1)
    if record is not None:
        info["kind"] = "record"
        info["record"] = record
    produced_by = [
        item.key
        for item in cache.iter_index()
        if item.entry is not None and item.entry.result == sha1
    ]
    if produced_by:
        info["produced_by"] = produced_by
    return info
