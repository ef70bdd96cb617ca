"""Settings read from the environment: the one place that looks at ``os.environ``.

=========================  ==============================================================
variable                   meaning
=========================  ==============================================================
``KACHERY_CLOUD_DIR``      root of the local store (default ``~/.kachery-cloud``), shared
                           with kachery-cloud
``KACHERY_ZONE``           zone the store shares objects through: a name from the zone
                           config file ``<root>/zones.json``, or a URL (``file://``,
                           ``s3://``, ``https://``; see ``docs/zones.md``)
``KACHERY_FLOWS_RETRY_SECONDS`` time budget for retrying one transient zone failure
                           (default 60)
``KACHERY_FLOWS_FSYNC``    ``0`` turns off fsync on writes (scratch stores only)
``KACHERY_CLOUD_MULTI_USER`` ``1`` makes new directories group-writable + setgid and
                           files group-readable, for a lab-shared store
``KACHERY_FLOWS_TRUST_ZONE_PICKLES`` ``1`` lets memo hits unpickle results this store did
                           not pickle itself (written by anyone who can write the zone or
                           the store's ref map); see ``SECURITY.md``
``KACHERY_FLOWS_MAX_SIZE`` size bound of a local store in front of a zone: bytes, ``200G``
                           (K/M/G/T, powers of 1024) or ``80%`` of the root's disk
=========================  ==============================================================

The kachery network zone (``KACHERY_ZONE=kachery:<zone>``, see
:func:`load_network_settings`) reads kachery 2's and kachery-cloud's own variables:
``KACHERY_BASE_URL``, ``KACHERY_API_KEY``, ``KACHERY_ALLOW_PUBLIC_ZONES``,
``KACHERY_GATEWAY_URL``, ``KACHERY_CLOUD_CLIENT_ID``, ``KACHERY_CLOUD_PRIVATE_KEY``, and
``KACHERY_NETWORK_RETRY_SECONDS``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_KACHERY_BASE_URL",
    "DEFAULT_KACHERY_GATEWAY_URL",
    "ENV_VARIABLES",
    "ZONES_FILE_NAME",
    "NetworkSettings",
    "Settings",
    "default_root",
    "load_network_settings",
    "load_settings",
    "parse_size",
    "settings_fingerprint",
]

#: Every environment variable :func:`load_settings` depends on (``HOME`` through the default
#: root). :func:`settings_fingerprint` compares them to tell whether the settings changed.
ENV_VARIABLES = (
    "KACHERY_CLOUD_DIR",
    "KACHERY_ZONE",
    "KACHERY_FLOWS_FSYNC",
    "KACHERY_CLOUD_MULTI_USER",
    "KACHERY_FLOWS_RETRY_SECONDS",
    "KACHERY_FLOWS_TRUST_ZONE_PICKLES",
    "KACHERY_FLOWS_MAX_SIZE",
    "HOME",
)

#: The zone config file's name, in the store root (``$KACHERY_CLOUD_DIR``).
ZONES_FILE_NAME = "zones.json"
#: kachery 2's public service (kachery 2 reads ``KACHERY_BASE_URL`` to override it).
DEFAULT_KACHERY_BASE_URL = "https://kachery.vercel.app"
#: kachery-cloud's legacy gateway (kachery-cloud reads ``KACHERY_GATEWAY_URL``).
DEFAULT_KACHERY_GATEWAY_URL = "https://kachery-gateway.figurl.org"

_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r} is not a number of seconds (e.g. 30)")
    return value


def default_root(env: Mapping[str, str] | None = None) -> Path:
    """The local store root: ``$KACHERY_CLOUD_DIR`` or ``~/.kachery-cloud``."""
    env = os.environ if env is None else env
    configured = env.get("KACHERY_CLOUD_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".kachery-cloud"


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment's kachery settings."""

    root: Path
    zone: str | None
    fsync: bool
    multi_user: bool
    retry_seconds: float = 60.0
    trust_zone_pickles: bool = False
    max_size: str | None = None

    @property
    def zones_file(self) -> Path:
        """Where named zones are configured: ``<root>/zones.json``."""
        return self.root / ZONES_FILE_NAME


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    zone = env.get("KACHERY_ZONE") or None
    return Settings(
        root=default_root(env),
        zone=zone,
        fsync=_flag(env, "KACHERY_FLOWS_FSYNC", True),
        multi_user=_flag(env, "KACHERY_CLOUD_MULTI_USER", False),
        retry_seconds=_seconds(env, "KACHERY_FLOWS_RETRY_SECONDS", 60.0),
        trust_zone_pickles=_flag(env, "KACHERY_FLOWS_TRUST_ZONE_PICKLES", False),
        max_size=_size_setting(env, "KACHERY_FLOWS_MAX_SIZE"),
    )


_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str | int, disk: str | os.PathLike[str] | None = None) -> int:
    """Bytes from a size: an int, ``"5000000"``, ``"200G"`` (K, M, G, T, P: powers of
    1024; ``200GB``/``200GiB`` too) or ``"80%"`` of the file system holding ``disk``
    (its nearest existing parent). :class:`ValueError` for anything else."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"size {text} is negative")
        return text
    raw = str(text)
    if raw.strip().endswith("%"):
        try:
            percent = float(raw.strip()[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            raise ValueError(f"size {raw!r}: a percentage must be in (0, 100]")
        if disk is None:
            raise ValueError(f"size {raw!r} is a percentage, but of which disk is not known")
        path = Path(disk).expanduser().absolute()
        while not path.exists():
            path = path.parent
        usage = os.statvfs(path)
        return int(usage.f_blocks * usage.f_frsize * percent / 100)
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise ValueError(f"size {raw!r} is not a size: use bytes (5000000), 200G (K/M/G/T) or 80%")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _size_setting(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        parse_size(raw, "/")
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: {exc}") from None
    return raw.strip()


def settings_fingerprint(env: Mapping[str, str] | None = None) -> tuple[str | None, ...]:
    """The raw values of :data:`ENV_VARIABLES`: equal fingerprints give equal settings.

    Much cheaper than :func:`load_settings`, so hot paths can re-check the environment on
    every call and rebuild their settings only when it changed.
    """
    get = (os.environ if env is None else env).get
    return tuple([get(name) for name in ENV_VARIABLES])


@dataclass(frozen=True)
class NetworkSettings:
    """Settings of the kachery network zone, read from the environment.

    ``api_key`` (``KACHERY_API_KEY``) is needed to publish; ``client_id`` and
    ``private_key_hex`` (``KACHERY_CLOUD_CLIENT_ID``/``KACHERY_CLOUD_PRIVATE_KEY``) override
    the kachery-cloud client keys in the store root for legacy gateway reads.
    """

    base_url: str
    api_key: str | None
    allow_public_zones: bool
    gateway_url: str
    client_id: str | None
    private_key_hex: str | None
    retry_seconds: float


def load_network_settings(env: Mapping[str, str] | None = None) -> NetworkSettings:
    """Read :class:`NetworkSettings` from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    raw_retry = env.get("KACHERY_NETWORK_RETRY_SECONDS", "").strip()
    try:
        retry_seconds = float(raw_retry) if raw_retry else 60.0
    except ValueError:
        raise ValueError(
            f"KACHERY_NETWORK_RETRY_SECONDS={raw_retry!r} is not a number of seconds"
        ) from None
    if not 0 <= retry_seconds < math.inf:
        raise ValueError(f"KACHERY_NETWORK_RETRY_SECONDS={raw_retry!r} must be finite and >= 0")
    return NetworkSettings(
        base_url=(env.get("KACHERY_BASE_URL") or DEFAULT_KACHERY_BASE_URL).rstrip("/"),
        api_key=env.get("KACHERY_API_KEY") or None,
        allow_public_zones=env.get("KACHERY_ALLOW_PUBLIC_ZONES", "").strip() == "1",
        gateway_url=(env.get("KACHERY_GATEWAY_URL") or DEFAULT_KACHERY_GATEWAY_URL).rstrip("/"),
        client_id=env.get("KACHERY_CLOUD_CLIENT_ID") or None,
        private_key_hex=env.get("KACHERY_CLOUD_PRIVATE_KEY") or None,
        retry_seconds=retry_seconds,
    )
