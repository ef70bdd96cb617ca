"""The text of one action-cache entry: what the ref map holds for a memo key.

An entry, ``memo/<key>`` -> ``kfm1 <record> <result> <codec> <size> <array token>``,
repeats what a hit needs, so a hit costs one ref lookup and one load. An inline entry
(``kfm2``, see :mod:`kachery_flows._inline`) adds the record's and the result's bytes in
base64. Entries are hints that others may write: anything that does not parse exactly,
or whose inline bytes do not hash to what it names, decodes to None (a miss).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from .codecs import RESULT_CODECS
from .uri import Ref

__all__ = [
    "ENTRY_TAG",
    "INLINE_ENTRY_MAX",
    "INLINE_TAG",
    "CacheEntry",
    "b64",
    "inline_record_bytes",
]

#: First word of a ref-map entry.
ENTRY_TAG = "kfm1"
#: First word of an entry that carries its record and result bytes inline.
INLINE_TAG = "kfm2"
#: Entries longer than this are never written inline (a local ref is read in one 4 KiB read).
INLINE_ENTRY_MAX = 4000
_ENTRY = re.compile(
    rf"kfm1 ([0-9a-f]{{40}}) ([0-9a-f]{{40}}) ({'|'.join(sorted(RESULT_CODECS))}) "
    r"(0|[1-9][0-9]{0,17}) (-|(?:[0-9a-f]{2}){1,64})[ \t\r\n]*",
    re.ASCII,
)
_ENTRY_MAX = 512


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
