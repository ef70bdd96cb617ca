"""Small results kept inline in their action-cache entry (as Bazel's action cache inlines
small outputs).

A miss whose result is ``json``, ``bytes`` or ``pkl`` of at most :data:`INLINE_RESULT_MAX` bytes,
in a store without a zone, writes one file: the entry (``kfm2 ...``), which carries the
record's and the result's bytes next to their SHA-1s. With fsync on, that is the miss's
one durable write; the record and result objects are not written yet. A hit reads the
value from the entry (its bytes are checked against the SHA-1 the entry names).

The objects are **materialized** (written to their object paths and marked as cache
objects, exactly as a non-inline miss writes them) as soon as their URIs can leave the
cache: ``.ref()``, ``.record()`` and ``kachery-flows info``; the entry then becomes an
ordinary one naming them, and stays ordinary when it is recomputed (a damaged object is
repaired). From then on ``load_*(uri)``, kachery-cloud readers and zones see ordinary
objects. Calls that return a Ref (``return_ref=True``), results that name other objects
(Refs inside) and stores with a zone never inline.
Garbage collection reads the record from the entry, so an inline entry keeps what its
record reaches alive, and its objects, once written, too.
"""

from __future__ import annotations

import json
from typing import Any

from . import codecs
from ._results import MISS, StoredResult, inline_result, small_encoding

__all__ = ["INLINE_RESULT_MAX", "inline_candidate", "inline_value"]

#: Largest result kept inline (bytes of its encoding).
INLINE_RESULT_MAX = 1024


def inline_candidate(
    store_has_zone: bool, value: Any, stem: str
) -> tuple[StoredResult, bytes] | None:
    """The stored-result description and bytes of ``value`` if it may be kept inline."""
    if store_has_zone:
        return None  # zone entries are read by others: they get ordinary objects
    encoded = small_encoding(value, INLINE_RESULT_MAX)
    if encoded is None:
        return None
    codec, data = encoded
    stored = inline_result(value, codec, data, stem)
    # A result naming other objects is a pointer people follow: an ordinary object.
    return (stored, data) if not stored.refs else None


def inline_value(codec: str, data: bytes) -> Any:
    """The value of inline result bytes (already checked against their SHA-1; a pickle
    already passed the trust rule of :meth:`ActionCache.trusts`).

    Intact bytes that no longer decode (e.g. a pickled class changed) are a miss.
    """
    if codec == "bytes":
        return data
    try:
        if codec == "json":
            return json.loads(data)
        # The package's one pickle decoder (trust was decided by ActionCache.trusts).
        return codecs.decode_pkl(data, "an inline memo result", trusted=True)
    except Exception:
        return MISS
