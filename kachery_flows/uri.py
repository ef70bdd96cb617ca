"""Parsing and formatting of kachery URIs, and the :class:`Ref` value type.

This is the only module that interprets URI strings. Everything downstream works with the
validated 40-hex SHA-1 of a :class:`Ref`, so no label, query or zone text ever reaches a
file system path.

Accepted forms::

    sha1://<40 lowercase hex>
    sha1://<hash>?label=<quoted label>[&other=keys]    (extra keys ignored)
    sha1://<hash>/<anything>                            (kachery-p2p path-style label)
    kachery:<zone>:sha1:<hash>[:<quoted label>]        (kachery 2)

Emitted form (exactly kachery-cloud's): ``sha1://<hash>`` or
``sha1://<hash>?label=<urllib.parse.quote(label)>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ._default_store import default_store
from .codecs import CODECS, codec_for_label, get_codec
from .errors import InvalidURIError

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Ref", "format_uri", "is_sha1_hex", "parse_uri", "redact_url"]

_HEX40 = re.compile(r"[0-9a-f]{40}")
_MAX_URI_LENGTH = 8192
_MAX_ZONE_LENGTH = 100  # the kachery network rejects longer zone names


_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it removed, for zone
    names, reprs, logs and messages (``s3://KEY:SECRET@bucket`` -> ``s3://bucket``)."""
    return _USERINFO.sub("", text)


def is_sha1_hex(value: str) -> bool:
    """Return True if ``value`` is exactly 40 lowercase hexadecimal ASCII digits."""
    return isinstance(value, str) and _HEX40.fullmatch(value) is not None


def _reject(uri: object, why: str) -> InvalidURIError:
    shown = repr(uri) if len(repr(uri)) <= 200 else repr(uri)[:200] + "..."
    return InvalidURIError(
        f"invalid kachery URI {shown}: {why}. Expected sha1://<40 lowercase hex digits>"
        "[?label=...] or kachery:<zone>:sha1:<hash>[:label]."
    )


def _check_suspicious(uri: str, locator: str) -> None:
    """Reject hostile text. ``locator`` is the part that names the object (before any
    query); it is held to a stricter standard than the informational label."""
    if len(uri) > _MAX_URI_LENGTH:
        raise _reject(uri, f"longer than {_MAX_URI_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise _reject(uri, "contains NUL or other control characters")
    if "\\" in uri:
        raise _reject(uri, "contains a backslash")
    if ".." in locator:
        raise _reject(uri, "contains '..'")
    lowered = locator.lower()
    if "%2e" in lowered or "%5c" in lowered or "%2f" in lowered or "%00" in lowered:
        raise _reject(uri, "contains a percent-encoded dot, slash, backslash or NUL")


def _check_hash(uri: str, candidate: str) -> str:
    if not is_sha1_hex(candidate):
        if re.fullmatch(r"[0-9a-fA-F]{40}", candidate):
            raise _reject(uri, "the hash must be lowercase hex")
        raise _reject(uri, f"the hash {candidate[:60]!r} is not 40 lowercase hex digits")
    return candidate


def _zone_problem(zone: str) -> str | None:
    """Why ``zone`` cannot be a kachery network zone name, or None if it can."""
    if not zone:
        return "the zone name is empty"
    if len(zone) > _MAX_ZONE_LENGTH:
        return f"the zone name is longer than {_MAX_ZONE_LENGTH} characters"
    if ":" in zone or any(c.isspace() or not c.isprintable() for c in zone):
        return "the zone name contains ':', whitespace or unprintable characters"
    return None


def _label_from_query(query: str) -> str | None:
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if sep and key == "label":
            return unquote(value)
    return None


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to one immutable stored object, named by the SHA-1 of its bytes.

    Two refs are equal when they name the same bytes: ``label``, ``codec`` and ``zone``
    are informational and take no part in equality, hashing or memo keys. ``str(ref)`` is the
    kachery-cloud URI, so a ref is JSON-able as that string and can be handed to
    kachery-cloud itself.

    Parameters
    ----------
    sha1:
        40 lowercase hex digits.
    label:
        Optional human-readable name carried in the URI (``?label=``).
    codec:
        How the object was encoded (``"bytes"``, ``"text"``, ``"json"``, ``"npy"`` or
        ``"pkl"``), when known; used by :meth:`load`.
    zone:
        The kachery network zone named by a ``kachery:<zone>:sha1:<hash>`` URI (``None``
        for every other form, and for kachery 2's local form ``kachery::sha1:...``). A
        store fetches a ref with a zone through that zone of the kachery network when
        it has no local copy. The zone is not part of :attr:`uri`.

    Examples
    --------
    >>> ref = kf.Ref("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", label="hello.txt")
    >>> str(ref)
    'sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?label=hello.txt'
    >>> ref == kf.parse_uri("sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")  # labels don't count
    True
    >>> _ = kf.store_text("hello")
    >>> ref.load()  # codec guessed from the label's suffix
    'hello'
    """

    sha1: str
    label: str | None = field(default=None, compare=False)
    codec: str | None = field(default=None, compare=False)
    zone: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not is_sha1_hex(self.sha1):
            raise InvalidURIError(f"invalid SHA-1 {self.sha1!r}: expected 40 lowercase hex digits")
        codec = self.codec
        if codec is not None and (type(codec) is not str or codec not in CODECS):
            get_codec(codec)  # raises ValueError naming the codecs
        if self.zone is not None and (problem := _zone_problem(self.zone)) is not None:
            raise InvalidURIError(f"invalid zone {self.zone!r}: {problem}")

    @classmethod
    def parse(cls, uri: str | Ref) -> Ref:
        """Parse a URI (or return a :class:`Ref` unchanged); see :func:`parse_uri`."""
        return parse_uri(uri)

    @property
    def uri(self) -> str:
        """The kachery-cloud form of this reference (``sha1://<hash>[?label=...]``)."""
        return format_uri(self.sha1, self.label)

    def __str__(self) -> str:
        return self.uri

    def with_label(self, label: str | None) -> Ref:
        """Return the same reference with a different label."""
        return Ref(self.sha1, label, self.codec, self.zone)

    def guess_codec(self) -> str | None:
        """The codec this ref was stored with, or guessed from the label's suffix."""
        if self.codec is not None:
            return self.codec
        return codec_for_label(self.label) if self.label else None

    def load(self, codec: str | None = None, *, store: Store | None = None, **kwargs: Any) -> Any:
        """Load and decode the object.

        ``codec`` defaults to the codec recorded on the ref, else one guessed from the
        label's suffix (``.npy``, ``.json``, ``.txt``, ``.pkl``); raw ``bytes`` otherwise.
        Extra keyword arguments go to the codec's loader (``mmap_mode=`` for npy,
        ``trusted=`` for pkl).
        """
        target = store if store is not None else default_store()
        return target.load(self, codec or self.guess_codec() or "bytes", **kwargs)

    def path(self, *, store: Store | None = None) -> str:
        """Local file path of the object, fetched from the zone if needed."""
        target = store if store is not None else default_store()
        return target.load_file(self)


def format_uri(sha1: str, label: str | None = None) -> str:
    """Format ``sha1://<hash>[?label=<quoted label>]`` exactly as kachery-cloud does.

    Examples
    --------
    >>> kf.format_uri("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "my data.txt")
    'sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?label=my%20data.txt'
    """
    if not is_sha1_hex(sha1):
        raise InvalidURIError(f"invalid SHA-1 {sha1!r}: expected 40 lowercase hex digits")
    if label is None:
        return f"sha1://{sha1}"
    return f"sha1://{sha1}?label={quote(label)}"


def parse_uri(uri: str | Ref) -> Ref:
    """Parse any accepted URI form into a :class:`Ref`.

    Raises :class:`~kachery_flows.errors.InvalidURIError` for anything else: wrong length,
    non-hex or upper-case hashes, ``..``, percent-encoded dots, backslashes, control
    characters and unknown schemes. No file system access happens here.

    Examples
    --------
    >>> kf.parse_uri("sha1://aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?label=a%20b.txt").label
    'a b.txt'
    >>> kf.parse_uri("kachery:default:sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d").zone
    'default'
    >>> kf.parse_uri("sha1://../../etc/passwd")
    Traceback (most recent call last):
    ...
    kachery_flows.errors.InvalidURIError: invalid kachery URI 'sha1://../../etc/passwd': ...
    """
    if isinstance(uri, Ref):
        return uri
    if not isinstance(uri, str):
        raise InvalidURIError(f"expected a URI string or Ref, got {type(uri).__name__}")
    if uri.startswith("sha1://"):
        rest = uri[len("sha1://") :]
        head, _, query = rest.partition("?")
        _check_suspicious(uri, head)
        digest, slash, tail = head.partition("/")
        _check_hash(uri, digest)
        label = _label_from_query(query) if query else None
        if label is None and slash and tail:
            label = unquote(tail)
        return Ref(digest, label)
    if uri.startswith("kachery:"):
        parts = uri.split(":")
        _check_suspicious(uri, ":".join(parts[:4]))
        if len(parts) < 4 or len(parts) > 5:
            raise _reject(uri, "expected kachery:<zone>:sha1:<hash>[:<label>]")
        if parts[2] != "sha1":
            raise _reject(uri, f"unsupported hash algorithm {parts[2]!r}")
        digest = _check_hash(uri, parts[3])
        if parts[1] and (problem := _zone_problem(parts[1])) is not None:
            raise _reject(uri, problem)
        label = unquote(parts[4]) if len(parts) == 5 and parts[4] else None
        return Ref(digest, label, zone=parts[1] or None)
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme:
        raise _reject(uri, f"unknown scheme {scheme[:20]!r}")
    raise _reject(uri, "no scheme")
