"""The zone registry: URL scheme -> zone class, imported only when a zone is opened.

As in fsspec's registry, a scheme maps to the dotted name of its class
(``"package.module:Class"``), imported on first use, with a hint telling what to install
when that import fails. Schemes are found in this order:

1. the zones shipped with the package (:data:`known_zones`) and any added with
   :func:`register_zone`;
2. the entry-point group ``kachery_flows.zones`` of the installed distributions, read
   (with :mod:`importlib.metadata`) only when a scheme is met that step 1 does not know;
3. otherwise the URL is an fsspec URL (``gs://``, ``az://``, ``memory://``, ...).

A ``zones.json`` entry only ever gives a URL: its scheme can select a shipped zone, one
registered in this process, or an entry point that an installed distribution declares,
never a module or class by name.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass

from ..errors import ZoneError
from ..uri import redact_url
from .base import Zone

__all__ = [
    "ENTRY_POINT_GROUP",
    "install_hint",
    "known_zones",
    "register_zone",
    "scheme_of",
    "zone_class",
]

#: The entry-point group third-party zones register under (name: scheme, value:
#: ``"package.module:ZoneClass"``).
ENTRY_POINT_GROUP = "kachery_flows.zones"

_FSSPEC = "kachery_flows.zones.fsspec:FsspecZone"
_S3_HINT = "pip install 'kachery-flows[s3]'"
_SCHEME_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")


@dataclass(frozen=True)
class _Known:
    target: str
    hint: str | None = None


#: scheme -> where its zone class is and what to install when importing it fails.
known_zones: dict[str, _Known] = {
    "file": _Known("kachery_flows.zones.local:LocalZone"),
    "http": _Known("kachery_flows.zones.http:HttpZone"),
    "https": _Known("kachery_flows.zones.http:HttpZone"),
    "kachery": _Known("kachery_flows.zones.kachery_network:KacheryNetworkZone"),
    "s3": _Known(_FSSPEC, _S3_HINT),
    "s3a": _Known(_FSSPEC, _S3_HINT),
    "gs": _Known(_FSSPEC, "pip install gcsfs"),
    "gcs": _Known(_FSSPEC, "pip install gcsfs"),
    "az": _Known(_FSSPEC, "pip install adlfs"),
    "abfs": _Known(_FSSPEC, "pip install adlfs"),
    "abfss": _Known(_FSSPEC, "pip install adlfs"),
}
_lock = threading.Lock()
_classes: dict[str, type[Zone]] = {}


def scheme_of(url: str) -> str:
    """The registry scheme of a zone URL: ``file`` for ``file://`` URLs and absolute or
    ``~`` paths, ``kachery`` for ``kachery:<zone>``, else the URL's ``<scheme>://``.

    :class:`~kachery_flows.errors.ZoneError` if ``url`` is none of these, or names no
    bucket or path after the scheme.
    """
    if url.startswith(("/", "~", "file://")):
        return "file"
    if url.startswith("kachery:"):
        return "kachery"
    match = _SCHEME_URL.match(url)
    if match is None:
        raise ZoneError(
            f"not a zone URL: {redact_url(url)!r}; expected file:///path, an absolute path, "
            "s3://bucket/prefix (or another fsspec URL) or http(s)://host/path"
        )
    scheme = match.group(1)
    if scheme not in ("http", "https") and not url[match.end() :].strip("/"):
        raise ZoneError(
            f"zone URL {redact_url(url)!r} names no bucket or path; expected e.g. "
            "s3://bucket/prefix"
        )
    return scheme


def install_hint(scheme: str) -> str | None:
    """What to install for zones of ``scheme`` (e.g. ``pip install 'kachery-flows[s3]'``)."""
    known = known_zones.get(scheme)
    return known.hint if known is not None else None


def register_zone(
    scheme: str, target: type[Zone] | str, *, hint: str | None = None, clobber: bool = False
) -> None:
    """Open URLs ``<scheme>://...`` (and ``zones.json`` entries with such a URL) with a
    zone class: ``target`` is the class or its dotted name ``"package.module:Class"``
    (imported on first use; ``hint`` is shown when that import fails).

    A scheme already registered raises :class:`ValueError` unless ``clobber``. Installed
    packages register through the ``kachery_flows.zones`` entry-point group instead.
    """
    name = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
    with _lock:
        current = known_zones.get(scheme)
        if current is not None and current.target != name and not clobber:
            raise ValueError(f"zone scheme {scheme!r} is already registered ({current.target})")
        known_zones[scheme] = _Known(name, hint)
        if isinstance(target, str):
            _classes.pop(scheme, None)
        else:
            _classes[scheme] = target


def zone_class(scheme: str) -> type[Zone]:
    """The zone class that opens URLs of ``scheme`` (imported now if it was not yet).

    :class:`~kachery_flows.errors.ZoneError` with the scheme's install hint when the
    class cannot be imported, or when it is not a :class:`~kachery_flows.zones.Zone`.
    """
    cls = _classes.get(scheme)
    if cls is not None:
        return cls
    known = known_zones.get(scheme) or _from_entry_points(scheme)
    target = known.target if known is not None else _FSSPEC
    cls = _import(scheme, target, known.hint if known is not None else None)
    with _lock:
        return _classes.setdefault(scheme, cls)


def _from_entry_points(scheme: str) -> _Known | None:
    """The entry point named ``scheme`` in :data:`ENTRY_POINT_GROUP`, if one is installed
    (distribution metadata is read only now, when a scheme is not otherwise known)."""
    import importlib.metadata

    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        return _Known(entry_point.value)
    return None


def _import(scheme: str, target: str, hint: str | None) -> type[Zone]:
    module_name, _, qualname = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        advice = f"; {hint}" if hint else ""
        raise ZoneError(
            f"cannot open {scheme}:// zones: importing {target} failed ({exc}){advice}"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, Zone)):
        raise ZoneError(f"cannot open {scheme}:// zones: {target} is not a Zone class")
    return obj
