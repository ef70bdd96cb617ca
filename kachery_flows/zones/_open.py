"""Turning a zone spec (``KACHERY_ZONE``) into a :class:`Zone`.

A spec is a URL or a zone name. URLs: ``file:///path`` or an absolute path (a shared
directory), ``http://`` / ``https://`` (a read-only mirror), ``kachery:<zone>`` (the
kachery network), and any other ``<protocol>://`` URL an fsspec file system understands
(``s3://bucket/prefix``, ...).
Names are looked up in ``$KACHERY_CLOUD_DIR/zones.json``::

    {
      "lab":    {"url": "file:///mnt/lab/kachery", "group_shared": true},
      "minio":  {"url": "s3://kachery/lab1", "endpoint_url": "http://minio.lab:9000",
                 "profile": "lab"},
      "mirror": {"url": "https://data.example.org/kachery", "read_only": true}
    }

Only these keys are accepted (anything else is an error, so a typo is not silently
ignored); no key can name code to import. ``"trust_pickles": true`` (any kind of zone) lets
memo hits unpickle results that others wrote to the zone (see ``SECURITY.md``);
``"plain_http_refs": true`` lets a plain ``http://`` mirror's memo entries decide hits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .._retry import RetryPolicy
from .._safeopen import NotRegularFileError, open_regular, read_fd
from ..config import Settings, load_settings
from ..errors import ZoneError
from ..uri import redact_url
from .base import Zone

__all__ = ["load_zones_file", "open_zone"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_COMMON_KEYS = {"url", "read_only", "retry", "trust_pickles"}
_KIND_KEYS = {
    "local": {"group_shared", "fsync"},
    "http": {"headers", "timeout", "allowed_redirect_hosts", "min_speed", "plain_http_refs"},
    "fsspec": {"storage_options", "endpoint_url", "profile", "region", "anon"},
}
_MAX_CONFIG_BYTES = 1 << 20
_RETRY_KEYS = {"total_seconds", "max_attempts", "initial_delay", "max_delay"}


def _kind(url: str) -> str:
    if url.startswith(("/", "~", "file://")):
        return "local"
    if url.startswith(("http://", "https://")):
        return "http"
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", url):
        if not url.split("://", 1)[1].strip("/"):
            raise ZoneError(
                f"zone URL {redact_url(url)!r} names no bucket or path; expected e.g. s3://bucket/prefix"
            )
        return "fsspec"
    raise ZoneError(
        f"not a zone URL: {redact_url(url)!r}; expected file:///path, an absolute path, s3://bucket/"
        "prefix (or another fsspec URL) or http(s)://host/path"
    )


def _local_path(url: str) -> Path:
    if not url.startswith("file://"):
        return Path(url).expanduser()
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ZoneError(
            f"file URL {redact_url(url)!r} names host {parts.hostname!r}; "
            "use file:///path"
        )
    if parts.query or parts.fragment:
        raise ZoneError(f"file URL {redact_url(url)!r} must not have a query or fragment")
    return Path(unquote(parts.path))


def _retry_policy(where: str, raw: Any, settings: Settings) -> RetryPolicy:
    if not isinstance(raw, dict) or not set(raw) <= _RETRY_KEYS:
        raise ZoneError(
            f"{where}: 'retry' must be an object with keys among {sorted(_RETRY_KEYS)}"
        )
    options = {"total_seconds": settings.retry_seconds, **raw}
    try:
        return RetryPolicy(**options)
    except (TypeError, ValueError) as exc:
        raise ZoneError(f"{where}: invalid 'retry': {exc}") from exc


def _make_zone(where: str, config: dict[str, Any], settings: Settings) -> Zone:
    url = config.get("url")
    if not isinstance(url, str) or not url:
        raise ZoneError(f"{where}: 'url' (a string) is required")
    kind = _kind(url)
    unknown = set(config) - _COMMON_KEYS - _KIND_KEYS[kind]
    if unknown:
        raise ZoneError(
            f"{where}: unknown key(s) {sorted(unknown)} for a {kind} zone; allowed: "
            f"{sorted(_COMMON_KEYS | _KIND_KEYS[kind])}"
        )
    trust_pickles = config.get("trust_pickles", False)
    if not isinstance(trust_pickles, bool):
        raise ZoneError(f"{where}: 'trust_pickles' must be true or false")
    zone = _make_zone_of_kind(kind, where, url, config, settings)
    zone.trust_pickles = trust_pickles
    return zone


def _make_zone_of_kind(
    kind: str, where: str, url: str, config: dict[str, Any], settings: Settings
) -> Zone:
    read_only = bool(config.get("read_only", False))
    retry = (
        _retry_policy(where, config["retry"], settings)
        if "retry" in config
        else RetryPolicy(total_seconds=settings.retry_seconds)
    )
    if kind == "local":
        from .local import LocalZone

        return LocalZone(
            _local_path(url),
            group_shared=bool(config.get("group_shared", settings.multi_user)),
            fsync=bool(config.get("fsync", settings.fsync)),
            read_only=read_only,
        )
    if kind == "http":
        from .http import HttpZone

        timeout = config.get("timeout", (10.0, 60.0))
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        if read_only is False and "read_only" in config:
            raise ZoneError(f"{where}: an http(s) zone is always read-only")
        min_speed = config.get("min_speed", (1024.0, 60.0))
        if not (isinstance(min_speed, (list, tuple)) and len(min_speed) == 2):
            raise ZoneError(f"{where}: 'min_speed' must be [bytes_per_second, seconds]")
        return HttpZone(
            url,
            headers=dict(config.get("headers") or {}),
            timeout=(float(timeout[0]), float(timeout[1])),
            retry=retry,
            allowed_redirect_hosts=list(config.get("allowed_redirect_hosts") or ()),
            min_speed=(float(min_speed[0]), float(min_speed[1])),
            plain_http_refs=config.get("plain_http_refs", False) is True,
        )
    from .fsspec import FsspecZone, s3_storage_options

    options = dict(config.get("storage_options") or {})
    shortcuts = {k: config[k] for k in ("endpoint_url", "profile", "region", "anon") if k in config}
    options.update(s3_storage_options(**shortcuts))
    return FsspecZone(url, storage_options=options, read_only=read_only, retry=retry)


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


def open_zone(
    spec: str, *, root: Path | None = None, settings: Settings | None = None
) -> Zone:
    """Open the zone named by ``spec`` (as in ``KACHERY_ZONE``).

    ``spec`` is a URL (``file:///path``, an absolute path, ``s3://bucket/prefix`` or
    another fsspec URL, ``http(s)://...``), ``kachery:<zone>`` (a zone of the kachery
    network, :class:`~kachery_flows.zones.kachery_network.KacheryNetworkZone`) or the
    name of an entry in
    ``<root>/zones.json``; ``root`` defaults to ``$KACHERY_CLOUD_DIR`` (the user's
    default store root, whatever root a :class:`~kachery_flows.Store` uses).
    """
    settings = settings if settings is not None else load_settings()
    if root is not None:
        settings = dataclasses.replace(settings, root=root)
    spec = spec.strip()
    if spec.startswith("kachery:"):
        from .kachery_network import KacheryNetworkZone

        return KacheryNetworkZone.from_spec(spec)
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
    return _make_zone(f"zone {spec!r}", {"url": spec}, settings)
