"""Checking a zone's ``zones.json`` options: the helpers every ``from_config`` uses.

A ``zones.json`` entry is ``{"url": ..., "trust_pickles": ..., options...}``; the opener
handles ``url`` and ``trust_pickles`` (valid for every zone) and hands the rest to the
zone class's :meth:`~kachery_flows.zones.Zone.from_config`, which accepts only the keys
it knows (a typo is an error, never silently ignored) and never takes a key that names
code to import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .._retry import RetryPolicy
from ..config import Settings
from ..errors import ZoneError

__all__ = ["COMMON_KEYS", "ZoneConfigError", "check_options", "retry_option"]

#: Keys the opener handles for every zone (they are never passed to ``from_config``).
COMMON_KEYS = frozenset({"url", "trust_pickles"})
_RETRY_KEYS = {"total_seconds", "max_attempts", "initial_delay", "max_delay"}


class ZoneConfigError(ZoneError):
    """A zone's configuration (a ``zones.json`` entry) is invalid.

    Raised by :meth:`~kachery_flows.zones.Zone.from_config`; the opener prefixes the
    message with where the entry is (``zone 'lab' in /home/me/.kachery-cloud/zones.json``).
    """


def check_options(options: Mapping[str, Any], allowed: Collection[str], kind: str) -> None:
    """Raise :class:`ZoneConfigError` if ``options`` has a key not in ``allowed``
    (``kind`` names the zone kind in the message, e.g. ``"local"``)."""
    unknown = set(options) - set(allowed)
    if unknown:
        raise ZoneConfigError(
            f"unknown key(s) {sorted(unknown)} for a {kind} zone; allowed: "
            f"{sorted(COMMON_KEYS | set(allowed))}"
        )


def retry_option(options: Mapping[str, Any], settings: Settings) -> RetryPolicy:
    """The zone's ``"retry"`` option as a :class:`RetryPolicy` (keys ``total_seconds``,
    ``max_attempts``, ``initial_delay``, ``max_delay``); without one, the settings'
    time budget (``KACHERY_FLOWS_RETRY_SECONDS``)."""
    if "retry" not in options:
        return RetryPolicy(total_seconds=settings.retry_seconds)
    raw = options["retry"]
    if not isinstance(raw, dict) or not set(raw) <= _RETRY_KEYS:
        raise ZoneConfigError(f"'retry' must be an object with keys among {sorted(_RETRY_KEYS)}")
    try:
        return RetryPolicy(**{"total_seconds": settings.retry_seconds, **raw})
    except (TypeError, ValueError) as exc:
        raise ZoneConfigError(f"invalid 'retry': {exc}") from exc
