"""Provenance records: what one computed result came from.

A record is kachery-canonical JSON stored as an object, so its ``sha1://`` URI names one
immutable piece of provenance: function, version or code fingerprint, input tokens and
refs, result ref and codec, duration, time, host, package version. Memoized calls write
one per result (:mod:`kachery_flows.action_cache` points the memo key at it), as do
Prefect results and Dask checkpoints (:mod:`kachery_flows._lineage_records`). Records are
what ``kachery-flows info`` and :func:`kachery_flows.lineage` show, and the root set of
garbage collection (:func:`reached_by`).

This module builds records (:func:`build_record`) and reads them back
(:func:`read_record_object`, :func:`decode_record`): anything that is not a record of
:data:`RECORD_SCHEMA` reads as None, never as an error.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import codecs
from ._results import StoredResult, scan_refs
from ._safeopen import read_regular
from ._version import __version__
from .errors import KacheryError
from .tokens import token_from_encoding
from .uri import Ref, parse_uri

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "RECORD_SCHEMA",
    "build_record",
    "decode_record",
    "reached_by",
    "read_record_object",
]

#: Schema tag of record objects.
RECORD_SCHEMA = "kachery-flows-record-1"
_RECORD_MAX_BYTES = 1 << 20


def read_record_object(store: Store, sha1: str) -> dict[str, Any] | None:
    """Load object ``sha1`` as a record; None if it is missing, corrupt or not a record.

    Records are small and hash-verified on every read: a flipped digit in a URI they list
    would otherwise misdirect garbage collection.
    """
    try:
        path = store.load_file(Ref(sha1))
        data = read_regular(path, _RECORD_MAX_BYTES)
    except (KacheryError, OSError):
        return None
    if len(data) > _RECORD_MAX_BYTES or hashlib.sha1(data).hexdigest() != sha1:
        return None
    return decode_record(data, f"sha1://{sha1}")


def decode_record(data: bytes, where: str) -> dict[str, Any] | None:
    """The record ``data`` holds (``where`` names it in errors), or None if it is not
    JSON or not a record."""
    try:
        record = codecs.decode_json(data, where)
    except KacheryError:
        return None
    if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
        return None
    return record


def _describe_input(value: Any, encoding: bytes) -> dict[str, Any]:
    cls = type(value)
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    info: dict[str, Any] = {"type": name, "token": token_from_encoding(encoding).hex()}
    if isinstance(value, Ref):
        info["ref"] = value.uri
    elif cls is str and value.startswith(("sha1://", "kachery:")):
        with suppress(ValueError):
            info["ref"] = parse_uri(value).uri
    if "ref" not in info:
        finite = cls is float and math.isfinite(value)
        if value is None or cls in (bool, int) or finite or (cls is str and len(value) <= 200):
            info["value"] = value
        elif hasattr(value, "dtype") and hasattr(value, "shape"):
            info["dtype"] = str(value.dtype)
            info["shape"] = [int(n) for n in value.shape]
        refs = scan_refs(value) if cls in (list, tuple, dict, set, frozenset) else ()
        if refs:
            info["refs"] = list(refs)
    return info


def build_record(
    *,
    key: str,
    function: str,
    version: str | None,
    code: str,
    closure: str | None,
    names: Sequence[str],
    values: dict[str, Any],
    encodings: Sequence[bytes],
    ignored: Sequence[str],
    result: StoredResult,
    duration: float,
    created: float,
) -> dict[str, Any]:
    """The provenance record of one computed call."""
    import platform
    import socket

    inputs = {n: _describe_input(values[n], e) for n, e in zip(names, encodings, strict=True)}
    input_refs: list[str] = []
    for item in inputs.values():
        for uri in ([item["ref"]] if "ref" in item else []) + item.get("refs", []):
            if uri not in input_refs:
                input_refs.append(uri)
    result_info: dict[str, Any] = {
        "uri": result.ref.uri,
        "sha1": result.ref.sha1,
        "codec": result.ref.codec,
        "size": result.size,
        "type": result.type_name,
    }
    if result.array_token is not None:
        result_info["array_token"] = result.array_token.hex()
    if result.refs:
        result_info["refs"] = list(result.refs)
    return {
        "schema": RECORD_SCHEMA,
        "key": key,
        "function": function,
        "version": version,
        "code": code,
        "closure": closure,
        "inputs": inputs,
        "input_refs": input_refs,
        "ignored": sorted(ignored),
        "result": result_info,
        "duration": round(duration, 6),
        "created": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "kachery_flows_version": __version__,
    }


def reached_by(record: dict[str, Any] | None) -> set[str]:
    """Object hashes a record keeps alive: inputs and everything inside the result."""
    if record is None:
        return set()
    uris: list[Any] = list(record.get("input_refs") or [])
    result = record.get("result")
    if isinstance(result, dict):
        uris.append(result.get("uri"))
        uris.extend(result.get("refs") or [])
    reached = set()
    for uri in uris:
        if isinstance(uri, str):
            with suppress(ValueError):
                reached.add(parse_uri(uri).sha1)
    return reached
