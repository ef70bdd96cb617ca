"""Reading small HTTP answers (JSON, error bodies) that a peer controls, within a cap.

``Response.json()`` and ``.text`` read a whole body, and requests decodes gzip without a
bound: 255 KB of gzip can become 800 MB. :func:`read_capped` reads a streamed response's
raw bytes and inflates them itself, never producing more than the cap (plus one byte, to
tell an oversized answer from one that fits) nor reading more than a few times the cap of
compressed input.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import requests
import urllib3

from ..errors import ZoneError

__all__ = ["MAX_ANSWER_BYTES", "json_capped", "read_capped"]

#: JSON answers and error bodies are read up to this size.
MAX_ANSWER_BYTES = 1 << 20
_RAW_FACTOR = 4
_CHUNK = 64 << 10


def _decoder(resp: requests.Response) -> Any:
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise ZoneError(f"unsupported Content-Encoding {encoding[:40]!r} in an answer")


def read_capped(resp: requests.Response, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """Up to ``limit + 1`` decoded bytes of a streamed response's body (an answer longer
    than ``limit`` shows as ``limit + 1`` bytes). A damaged compressed body raises
    :class:`~kachery_flows.errors.ZoneError`; a broken connection ``requests.Timeout`` or
    ``requests.ConnectionError``."""
    decoder = _decoder(resp)
    out = bytearray()
    raw_read = 0
    while len(out) <= limit and raw_read <= _RAW_FACTOR * limit:
        try:
            raw = resp.raw.read(_CHUNK, decode_content=False)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.Timeout(str(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(str(exc)) from exc
        if not raw:
            break
        raw_read += len(raw)
        if decoder is None:
            out += raw
            continue
        try:
            out += decoder.decompress(raw, limit + 1 - len(out))
            while decoder.unconsumed_tail and len(out) <= limit:
                out += decoder.decompress(decoder.unconsumed_tail, limit + 1 - len(out))
        except zlib.error as exc:
            raise ZoneError(f"an answer's compressed body is damaged: {exc}") from exc
    return bytes(out[: limit + 1])


def json_capped(resp: requests.Response, limit: int = MAX_ANSWER_BYTES) -> Any:
    """The JSON value of a streamed response's body, or None if it is longer than
    ``limit``, not UTF-8, not JSON, or nested too deeply."""
    data = read_capped(resp, limit)
    if len(data) > limit:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
