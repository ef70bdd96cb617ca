"""Turning a zone spec (``KACHERY_ZONE``) into a :class:`Zone`.

A spec is a URL or a zone name. URLs: ``file:///path`` or an absolute path (a shared
directory), ``http://`` / ``https://`` (a read-only mirror), ``kachery:<zone>`` (the
kachery network), any scheme a third-party zone registers (entry-point group
``kachery_flows.zones``), and any other ``<protocol>://`` URL an fsspec file system
understands (``s3://bucket/prefix``, ...). The zone registry (:mod:`._registry`) maps the
URL's scheme to its zone class.
Names are looked up in ``$KACHERY_CLOUD_DIR/zones.json``::

    {
      "lab":    {"url": "file:///mnt/lab/kachery", "group_shared": true},
      "minio":  {"url": "s3://kachery/lab1", "endpoint_url": "http://minio.lab:9000",
                 "profile": "lab"},
      "mirror": {"url": "https://data.example.org/kachery", "read_only": true}
    }

Each zone class accepts only its own keys (:meth:`Zone.from_config`; anything else is an
error, so a typo is not silently ignored); no key can name code to import.
``"trust_pickles": true`` (any kind of zone) lets memo hits unpickle results that others
wrote to the zone (see ``SECURITY.md``); ``"plain_http_refs": true`` lets a plain
``http://`` mirror's memo entries decide hits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .._safeopen import NotRegularFileError, open_regular, read_fd
from ..config import Settings, load_settings
from ..errors import ZoneError
from ..uri import redact_url
from ._options import COMMON_KEYS, ZoneConfigError
from ._registry import scheme_of, zone_class
from .base import Zone

__all__ = ["load_zones_file", "open_zone"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_MAX_CONFIG_BYTES = 1 << 20


def _make_zone(where: str, config: dict[str, Any], settings: Settings) -> Zone:
    url = config.get("url")
    if not isinstance(url, str) or not url:
        raise ZoneError(f"{where}: 'url' (a string) is required")
    cls = zone_class(scheme_of(url))
    trust_pickles = config.get("trust_pickles", False)
    if not isinstance(trust_pickles, bool):
        raise ZoneError(f"{where}: 'trust_pickles' must be true or false")
    options = {key: value for key, value in config.items() if key not in COMMON_KEYS}
    try:
        zone = cls.from_config(url, options, settings)
    except ZoneConfigError as exc:
        raise ZoneConfigError(f"{where}: {exc}") from None
    zone.trust_pickles = trust_pickles
    return zone


def load_zones_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a ``zones.json`` file: ``{name: {"url": ..., options...}}``.

    A missing file is an empty configuration. A file owned by another user (other than
    root), writable by anyone, or not a regular file (a symlink, FIFO, ...; checked on the
    opened descriptor, so nothing can be swapped in between) is refused: it decides where
    this user's objects and action-cache records go.
    """
    try:
        fd, st = open_regular(str(path))
    except FileNotFoundError:
        return {}
    except NotRegularFileError as exc:
        raise ZoneError(
            f"refusing to read {path}: it is {exc.strerror}; zone configuration must be a "
            "regular file you own (not a link to one)"
        ) from None
    except OSError as exc:
        raise ZoneError(f"cannot read zone config {path}: {exc}") from exc
    try:
        getuid = getattr(os, "getuid", None)
        if getuid is not None and st.st_uid not in (getuid(), 0):
            raise ZoneError(
                f"refusing to read {path}: it is owned by uid {st.st_uid}, not by you; "
                "zone configuration must be your own (copy it to your store root)"
            )
        if st.st_mode & stat.S_IWOTH:
            raise ZoneError(
                f"refusing to read {path}: anyone can write it (mode {st.st_mode & 0o777:o}); "
                "chmod o-w it"
            )
        raw = read_fd(fd, _MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ZoneError(f"zone config {path} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ZoneError(f"cannot read zone config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ZoneError(f"zone config {path} must be a JSON object of name -> zone")
    for name, config in data.items():
        if not _NAME.fullmatch(name) or not isinstance(config, dict):
            raise ZoneError(
                f"zone config {path}: entry {name!r} must be a name of letters, digits, "
                "'-', '_', '.' mapping to an object with a 'url'"
            )
    return data


def open_zone(spec: str, *, root: Path | None = None, settings: Settings | None = None) -> Zone:
    """Open the zone named by ``spec`` (as in ``KACHERY_ZONE``).

    ``spec`` is a URL (``file:///path``, an absolute path, ``s3://bucket/prefix`` or
    another fsspec URL, ``http(s)://...``, a scheme a third-party zone registers),
    ``kachery:<zone>`` (a zone of the kachery network,
    :class:`~kachery_flows.zones.kachery_network.KacheryNetworkZone`) or the name of an
    entry in ``<root>/zones.json``; ``root`` defaults to ``$KACHERY_CLOUD_DIR`` (the
    user's default store root, whatever root a :class:`~kachery_flows.Store` uses). The
    zone class comes from the registry and builds itself with its ``from_config``.
    """
    settings = settings if settings is not None else load_settings()
    if root is not None:
        settings = dataclasses.replace(settings, root=root)
    spec = spec.strip()
    if _NAME.fullmatch(spec):
        zones = load_zones_file(settings.zones_file)
        if spec not in zones:
            known = ", ".join(sorted(zones)) or "none"
            raise ZoneError(
                f"KACHERY_ZONE={spec!r} is not a URL and not a zone in {settings.zones_file} "
                f"(configured zones: {known}). For a zone of the kachery network use "
                f"KACHERY_ZONE=kachery:{spec}; see docs/zones.md."
            )
        return _make_zone(f"zone {spec!r} in {settings.zones_file}", zones[spec], settings)
    return _make_zone(f"zone {redact_url(spec)!r}", {"url": spec}, settings)
