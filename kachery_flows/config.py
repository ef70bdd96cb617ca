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
    )


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
