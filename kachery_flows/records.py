"""Action-cache records: memo key -> result, with provenance.

A computed call leaves three things behind:

* the **result**, a content-addressed object (see :mod:`kachery_flows._results`);
* the **record**, kachery-canonical JSON stored as an object too, so its ``sha1://`` URI
  names one immutable piece of provenance: function, version or code fingerprint, input
  tokens and refs, result ref and codec, duration, time, host, package version;
* an **entry** in a ref map, ``memo/<key>`` -> ``kfm1 <record> <result> <codec> <size>
  <array token>``. It repeats what a hit needs, so a hit costs one ref lookup and one load.

The ref map is the zone's (``Zone.get_ref``/``set_ref``) when a writable zone is configured,
so a shared directory or bucket shares the cache; otherwise it is the local directory
``<root>/.kachery-flows/refs/``. A read-only zone's entries are read after the local ones; a zone
without mutable refs (the kachery network) shares objects only, and entries stay local.

Each store also keeps a local index, ``<root>/.kachery-flows/memo/keys/aa/<key>``, of the
keys this machine computed or used (function and entry; the file's mtime is the last use,
refreshed at most every few minutes per process). It serves :meth:`ActionCache.clear`,
record expiry and garbage collection (:mod:`kachery_flows.garbage`).

Trust: a hit unpickles a ``pkl`` result only if this store pickled exactly those bytes
itself (it leaves a marker, ``<root>/.kachery-flows/memo/trusted/aa/<result sha1>``, when
it computes one; hits never create it; a pickle carried inline by an entry of the store's
own local ref map is vouched for by that entry, see :mod:`._inline`), or if the store
trusts its zone's pickles
(:attr:`Store.trust_zone_pickles`). Any other ``pkl`` entry, e.g. one a colleague wrote
to a shared zone, is a miss: the call recomputes and overwrites it, and nothing of it is
unpickled. ``npy``, ``json`` and ``bytes`` results run no code when loaded and need no
trust.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import math
import os
import re
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import codecs
from ._atomic import create_marker, replace_small
from ._inline import inline_record, inline_value
from ._lineage_index import note_producer
from ._lock import FileLock, RangeLock, range_locks_supported
from ._results import MISS, StoredResult, load_result, result_exists, scan_refs
from ._safeopen import READ_FLAGS, read_fd, read_regular
from .errors import (
    DecodeError,
    KacheryError,
    ObjectNotFoundError,
    StoreWriteError,
    UnsafePickleError,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
)
from .store import Store
from .tokens import token_from_encoding
from .uri import Ref, is_sha1_hex, parse_uri
from .zones.base import MAX_REF_BYTES, Zone
from .zones.local import LocalZone

__all__ = [
    "ENTRY_TAG",
    "INLINE_TAG",
    "RECORD_SCHEMA",
    "ActionCache",
    "CacheEntry",
    "IndexEntry",
    "RefMap",
    "action_cache",
    "build_record",
    "b64",
    "describe",
    "inline_record_bytes",
    "reached_by",
    "read_record_object",
]

#: Schema tag of record objects.
RECORD_SCHEMA = "kachery-flows-record-1"
#: First word of a ref-map entry.
ENTRY_TAG = "kfm1"
#: First word of an entry that carries its record and result bytes inline.
INLINE_TAG = "kfm2"
#: Entries longer than this are never written inline (a local ref is read in one 4 KiB read).
INLINE_ENTRY_MAX = 4000
_CODECS = frozenset({"npy", "json", "pkl", "bytes"})
_ENTRY = re.compile(
    rb"kfm1 ([0-9a-f]{40}) ([0-9a-f]{40}) (npy|json|pkl|bytes) (0|[1-9][0-9]{0,17}) "
    rb"(-|(?:[0-9a-f]{2}){1,64})[ \t\r\n]*".decode("ascii"),
    re.ASCII,
)
_ENTRY_MAX = 512
_TOUCH_INTERVAL = 300.0
_DECODED_MAX = 4096
_RECORD_MAX_BYTES = 1 << 20
_log = logging.getLogger("kachery_flows.memoize")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What the ref map holds for one memo key."""

    record: str
    result: str
    codec: str
    size: int
    array_token: bytes | None = None
    #: The record's bytes in base64, when the entry carries them (``kfm2``; see
    #: :mod:`._inline`).
    record_b64: str | None = None
    #: The result's bytes, when the entry carries them (``json``, ``bytes``, ``pkl``).
    result_data: bytes | None = None

    def encode(self) -> str:
        """The ref-map text of this entry."""
        token = self.array_token.hex() if self.array_token is not None else "-"
        if self.record_b64 is not None and self.result_data is not None:
            return (
                f"{INLINE_TAG} {self.record} {self.result} {self.codec} {self.size} {token} "
                f"{self.record_b64} {b64(self.result_data)}"
            )
        return f"{ENTRY_TAG} {self.record} {self.result} {self.codec} {self.size} {token}"

    @classmethod
    def decode(cls, text: str) -> CacheEntry | None:
        """Parse ref-map text; None if it is not a valid entry (treated as a miss).

        The grammar is strict ASCII (``str.split`` and ``str.isdigit`` would accept other
        whitespace and digits), sizes fit a file (< 2**63) and tokens are short: an
        entry is a hint that others may write, so anything else is a miss, never an
        error. An inline entry (``kfm2``) is a ``kfm1`` entry followed by the record's
        and the result's base64, both checked against the hashes the entry names."""
        if text.startswith(INLINE_TAG + " ") and len(text) <= INLINE_ENTRY_MAX + 64:
            fields = text.rstrip(" \t\r\n").split(" ")
            if len(fields) != 8:
                return None
            head = " ".join([ENTRY_TAG, *fields[1:6]])
            return _decode_inline(cls.decode(head), fields[6:])
        match = _ENTRY.fullmatch(text) if len(text) <= _ENTRY_MAX else None
        if match is None:
            return None
        record, result, codec, size, token = match.groups()
        array_token = None if token == "-" else bytes.fromhex(token)
        return cls(record, result, codec, int(size), array_token)

    @property
    def result_ref(self) -> Ref:
        """The result as a :class:`Ref` with its codec."""
        return Ref(self.result, codec=self.codec)


def b64(data: bytes) -> str:
    """Base64 text of ``data`` (the encoding of inline bytes in an entry)."""
    return base64.b64encode(data).decode("ascii")


def _decode_inline(entry: CacheEntry | None, fields: list[str]) -> CacheEntry | None:
    """An inline entry whose result and record bytes hash to what it names, else None."""
    if entry is None or entry.codec == "npy":
        return None
    record, result_b64 = fields
    try:
        result = base64.b64decode(result_b64, validate=True)
    except ValueError:
        return None
    if len(result) != entry.size or hashlib.sha1(result).hexdigest() != entry.result:
        return None
    inline = CacheEntry(entry.record, entry.result, entry.codec, entry.size, None, record, result)
    return inline if inline_record_bytes(inline) is not None else None


def inline_record_bytes(entry: CacheEntry) -> bytes | None:
    """The record bytes an inline entry carries, if they hash to its record; else None."""
    if entry.record_b64 is None:
        return None
    try:
        data = base64.b64decode(entry.record_b64, validate=True)
    except ValueError:
        return None
    return data if hashlib.sha1(data).hexdigest() == entry.record else None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A key this machine computed or used."""

    key: str
    function: str | None
    entry: CacheEntry | None
    last_used: float


class _DirRefMap:
    """A name -> text map in a directory; atomic replace on write."""

    def __init__(self, base: Path, store: Store) -> None:
        self.base = base
        self.store = store
        self._prefix = f"{base}/"

    def get(self, name: str) -> str | None:
        """The text of ref ``name``; None if it is absent, a symlink, a directory, a FIFO
        (opened without blocking, so it never hangs) or larger than ``MAX_REF_BYTES``."""
        try:
            fd = os.open(self._prefix + name, READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise
        try:
            data = os.read(fd, 4096)
            if len(data) == 4096:
                data += read_fd(fd, MAX_REF_BYTES + 1 - 4096)
        except (IsADirectoryError, BlockingIOError):
            return None
        finally:
            os.close(fd)
        if len(data) > MAX_REF_BYTES:
            return None
        return data.decode("utf-8", "replace")

    def set(self, name: str, value: str | None) -> None:
        path = self.base / name
        if value is None:
            path.unlink(missing_ok=True)
            return
        _write_small(self.store, path, value.encode("utf-8"), fsync=self.store.fsync)

    def names(self, prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(self.base / prefix))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                yield f"{prefix}/{entry.name}"


def _write_small(store: Store, path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace the file ``path`` with ``data`` atomically (through the staging dir)."""
    replace_small(store.staging_dir, path, data, fsync=fsync, group_shared=store.group_shared)


class RefMap:
    """A store's mutable name -> text map: its zone's refs when the zone is writable and
    has refs (shared with every machine using the zone); otherwise the local directory
    ``<root>/.kachery-flows/refs/``, whose reads fall back to a read-only zone's refs.

    Names are zone ref names (see :func:`kachery_flows.zones.base.validate_ref_name`);
    callers taking names from outside validate them first.
    """

    def __init__(self, store: Store) -> None:
        zone = store.zone
        refs = zone is not None and zone.supports_refs
        #: The writable zone holding the map, or None when the map is local.
        self.zone: Zone | None = zone if refs and zone is not None and zone.writable else None
        # A read-only zone's entries are read after the local ones, unless its refs may
        # not decide hits (a plain-http mirror without opt-in, see Zone.memo_refs).
        self._fallback_zone: Zone | None = (
            zone if refs and zone is not None and not zone.writable and zone.memo_refs
            else None
        )
        #: The local map (None when the map is the zone's).
        self.local: _DirRefMap | None = (
            None if self.zone is not None
            else _DirRefMap(store.root / ".kachery-flows" / "refs", store)
        )

    def get(self, name: str) -> str | None:
        """The text of ``name``, or None; also None when a zone holds something there that
        cannot be a ref (larger than ``MAX_REF_BYTES``, or not text): others write a zone's
        refs, and a bad one must read as absent, not fail the caller. Transient trouble
        and denied access still raise."""
        try:
            if self.zone is not None:
                return self.zone.get_ref(name)
            assert self.local is not None
            text = self.local.get(name)
            if text is None and self._fallback_zone is not None:
                with suppress(NotImplementedError):
                    text = self._fallback_zone.get_ref(name)
            return text
        except (ZoneUnavailableError, ZonePermissionError):
            raise
        except ZoneError:
            return None

    def set(self, name: str, value: str | None) -> None:
        """Set ``name`` to ``value`` (None removes it)."""
        if self.zone is not None:
            self.zone.set_ref(name, value)
        else:
            assert self.local is not None
            self.local.set(name, value)


class ActionCache:
    """The action cache of one :class:`~kachery_flows.store.Store` (see the module docs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        internal = store.root / ".kachery-flows"
        zone = store.zone
        self.refs = RefMap(store)
        self.index_dir = internal / "memo" / "keys"
        shared_locks = isinstance(zone, LocalZone) and zone.writable
        if isinstance(zone, LocalZone) and shared_locks:
            self.lock_dir = zone.root / ".kachery-flows" / "locks"
        else:
            self.lock_dir = internal / "locks"
        #: The byte-range lock table of this host's locks (None: lock files).
        self.lock_table: Path | None = (
            internal / "lock-table" if not shared_locks and range_locks_supported() else None
        )
        self._touched: dict[str, float] = {}
        self._decoded: dict[str, CacheEntry] = {}
        self._root = str(store.root)
        #: Markers of the pickled results this store wrote (see the module docs).
        self.trusted_dir = internal / "memo" / "trusted"
        self._trusted: set[str] = set()
        self._distrust_logged: set[str] = set()

    # --------------------------------------------------------------- ref map
    @staticmethod
    def ref_name(key: str) -> str:
        """The ref-map name of a memo key."""
        return f"memo/{key}"

    def get(self, key: str) -> CacheEntry | None:
        """The entry of ``key``, or None (also when the ref is not an entry: a miss)."""
        text = self.refs.get(f"memo/{key}")
        if text is None:
            return None
        # Equal text decodes to an equal entry: hits skip re-checking an inline entry's bytes.
        entry = self._decoded.get(text)
        if entry is None:
            entry = CacheEntry.decode(text)
            if entry is not None:
                if len(self._decoded) >= _DECODED_MAX:
                    self._decoded.clear()
                self._decoded[text] = entry
        return entry

    def _set(self, key: str, entry: CacheEntry | None) -> None:
        self.refs.set(self.ref_name(key), entry.encode() if entry is not None else None)

    def put(self, key: str, function: str, entry: CacheEntry) -> None:
        """Point ``key`` at ``entry`` (the result and record must already be stored)."""
        self._set(key, entry)
        self._write_index(key, function, entry)
        if entry.result_data is None:
            # An inline result has no URI outside the cache yet: it is indexed for lineage
            # when it is materialized, so the inline miss stays one write.
            note_producer(self.store, self.refs, entry.result, entry.record)

    def forget(self, key: str) -> bool:
        """Remove ``key``'s entry and index entry; True if there was an entry."""
        existed = self.get(key) is not None
        self._set(key, None)
        self.index_path(key).unlink(missing_ok=True)
        self._touched.pop(key, None)
        return existed

    def lock(self, key: str) -> FileLock | RangeLock:
        """The compute lock of ``key``: a lock file in the shared directory when the zone
        is one, else a byte-range lock in this store's lock table (see :mod:`._lock`)."""
        if self.lock_table is not None:
            return RangeLock(self.lock_table, key, group_shared=self.store.group_shared)
        return FileLock(self.lock_dir / f"{key}.lock", group_shared=self.store.group_shared)

    # ----------------------------------------------------------------- trust
    def trusted_path(self, sha1: str) -> Path:
        """The marker saying this store pickled result ``sha1`` itself."""
        return self.trusted_dir / sha1[:2] / sha1

    def trusts(self, entry: CacheEntry) -> bool:
        """Whether a hit may load the entry's result (see the module docs)."""
        return entry.codec != "pkl" or self.trusts_pickle(entry.result) or self._vouched(entry)

    def _vouched(self, entry: CacheEntry) -> bool:
        """An inline pickle carried by an entry of this store's own ref map: bytes this
        store pickled itself (the local file is read again to tell it from a read-only
        zone's entry); trusted for the rest of the process."""
        local = self.refs.local
        data = inline_record_bytes(entry) if local is not None else None
        record = inline_record(data) if data is not None else None
        key = record.get("key") if record is not None else None
        if local is None or not isinstance(key, str) or not is_sha1_hex(key):
            return False
        text = local.get(self.ref_name(key))
        if text is None or CacheEntry.decode(text) != entry:
            return False
        self.trust_inline(entry.result)
        return True

    def trusts_pickle(self, sha1: str) -> bool:
        """Whether pickle ``sha1`` may be unpickled: this store pickled those bytes itself
        (:meth:`trust`), or the store trusts its zone's pickles."""
        if self.store.trust_zone_pickles or sha1 in self._trusted:
            return True
        if self.trusted_path(sha1).exists():
            self._trusted.add(sha1)
            return True
        return False

    def trust(self, sha1: str) -> None:
        """Record that this store pickled result ``sha1`` itself (when computing it)."""
        path = self.trusted_path(sha1)
        try:
            create_marker(path, group_shared=self.store.group_shared)
        except OSError as exc:
            raise StoreWriteError.from_os_error(exc, "mark as trusted", path) from exc
        self._trusted.add(sha1)

    def trust_inline(self, sha1: str) -> None:
        """Trust pickle ``sha1`` in this process: this store just pickled it into an inline
        entry of its own ref map (which vouches for it in other processes; no marker)."""
        self._trusted.add(sha1)

    def _log_distrust(self, entry: CacheEntry) -> None:
        if entry.result in self._distrust_logged:
            return
        self._distrust_logged.add(entry.result)
        zone = self.refs.zone or self.store.zone
        where = f"zone {zone.name}" if zone is not None else "the store's ref map"
        _log.info(
            "not unpickling memoized result sha1://%s from %s: this store did not pickle "
            "it; recomputing. If you trust everyone who can write there, set "
            '"trust_pickles": true for the zone in zones.json or '
            "KACHERY_FLOWS_TRUST_ZONE_PICKLES=1 (see SECURITY.md).",
            entry.result, where,
        )

    # --------------------------------------------------------------- results
    def load(self, entry: CacheEntry) -> Any:
        """The result value, or ``MISS`` if it is missing, corrupt or an untrusted
        pickle."""
        if not self.trusts(entry):
            self._log_distrust(entry)
            return MISS
        if entry.result_data is not None:
            return inline_value(entry.codec, entry.result_data)
        try:
            return load_result(
                self.store, self._root, entry.result, entry.codec, entry.size,
                entry.array_token, self.trusts_pickle,
            )
        except (DecodeError, UnsafePickleError) as exc:
            # Intact bytes that no longer decode (a class changed, a planted entry with
            # the wrong codec): recompute; the object stays where it is.
            _log.info("memoized result sha1://%s does not load (%s); recomputing",
                      entry.result, exc)
            return MISS

    def present(self, entry: CacheEntry) -> bool:
        """Whether the entry's result object exists (not loaded), or is inline."""
        if entry.result_data is not None:
            return True
        return result_exists(self.store, self._root, entry.result, entry.size)

    def write_record(self, record: dict[str, Any]) -> Ref:
        """Store a record object (marked as an action-cache object)."""
        data = codecs.encode_json(record)
        return self.store.write_object(lambda w: w.write(data), "json", collectable=True)

    def materialize(self, key: str, entry: CacheEntry, label: str | None = None) -> CacheEntry:
        """Write an inline entry's result and record as ordinary (marked) objects, so their
        URIs work everywhere, and make the entry an ordinary one naming them (from then on
        the objects are the truth, and a damaged one is recomputed and repaired); other
        entries are returned as they are (see :mod:`._inline`)."""
        result = entry.result_data
        record = inline_record_bytes(entry)
        if record is None or result is None:
            return entry
        if entry.codec == "pkl":
            self.trust(entry.result)  # the object, unlike the entry, needs its marker
        put = self.store.write_object
        put(lambda w: w.write(result), entry.codec, label, collectable=True)
        put(lambda w: w.write(record), "json", collectable=True)
        plain = CacheEntry(entry.record, entry.result, entry.codec, entry.size)
        self._set(key, plain)
        note_producer(self.store, self.refs, entry.result, entry.record)
        return plain

    def read_record(self, entry: CacheEntry) -> dict[str, Any] | None:
        """The record of an entry, or None if it cannot be read."""
        if entry.record_b64 is not None:
            data = inline_record_bytes(entry)
            return inline_record(data) if data is not None else None
        return read_record_object(self.store, entry.record)

    # ----------------------------------------------------------------- index
    def index_path(self, key: str) -> Path:
        """The local index file of ``key``."""
        return self.index_dir / key[:2] / key

    def _write_index(self, key: str, function: str | None, entry: CacheEntry) -> None:
        data = json.dumps({"function": function, "entry": entry.encode()}).encode()
        _write_small(self.store, self.index_path(key), data, fsync=False)
        self._touched[key] = time.monotonic()

    def note_use(self, key: str, function: str, entry: CacheEntry) -> None:
        """Record that ``key`` was used now (cheap: at most once per interval per process)."""
        now = time.monotonic()
        if now - self._touched.get(key, -_TOUCH_INTERVAL) < _TOUCH_INTERVAL:
            return
        self._touched[key] = now
        try:
            try:
                os.utime(self.index_path(key))
            except FileNotFoundError:
                self._write_index(key, function, entry)
        except OSError:
            pass  # a read-only or full store: hits still work, only last-use goes unrecorded

    def iter_index(self) -> Iterator[IndexEntry]:
        """Every key in the local index."""
        try:
            shards = sorted(os.scandir(self.index_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(shard.path):
                if not is_sha1_hex(item.name):
                    continue
                path = Path(item.path)
                try:
                    last_used = item.stat().st_mtime
                    info = json.loads(path.read_bytes())
                except (OSError, ValueError, RecursionError):
                    continue
                function = info.get("function") if isinstance(info, dict) else None
                text = info.get("entry") if isinstance(info, dict) else None
                yield IndexEntry(
                    item.name,
                    function if isinstance(function, str) else None,
                    CacheEntry.decode(text) if isinstance(text, str) else None,
                    last_used,
                )

    def local_keys(self) -> Iterator[str]:
        """Keys in the local ref map (none when the ref map is a zone's)."""
        if self.refs.local is None:
            return
        for name in self.refs.local.names("memo"):
            key = name.rsplit("/", 1)[1]
            if is_sha1_hex(key):
                yield key


def read_record_object(store: Store, sha1: str) -> dict[str, Any] | None:
    """Load object ``sha1`` as a record; None if it is missing, corrupt or not a record.

    Records are small and hash-verified on every read: a flipped digit in a URI they list
    would otherwise misdirect garbage collection.
    """
    try:
        path = store.load_file(Ref(sha1))
        data = read_regular(path, _RECORD_MAX_BYTES)
        if len(data) > _RECORD_MAX_BYTES or hashlib.sha1(data).hexdigest() != sha1:
            return None
        record = codecs.decode_json(data, f"sha1://{sha1}")
    except (KacheryError, OSError):
        return None
    if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
        return None
    return record


_caches: weakref.WeakKeyDictionary[Store, ActionCache] = weakref.WeakKeyDictionary()


def action_cache(store: Store) -> ActionCache:
    """The (per-process, shared) :class:`ActionCache` of ``store``."""
    cache = _caches.get(store)
    if cache is None:
        cache = _caches.setdefault(store, ActionCache(store))
    return cache


# ----------------------------------------------------------------- records
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

    from . import __version__

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

