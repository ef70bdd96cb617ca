"""What every command module shares: the exit codes, JSON output and the store a command
works on. Command modules import this, never each other or the package ``__init__``, so
the command line has no import cycles."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..store import Store, get_default_store

__all__ = ["EXIT_CODES", "command_store", "print_json"]

EXIT_CODES = {
    "ok": 0,
    "error": 1,
    "usage": 2,
    "not_found": 3,
    "corrupt": 4,
    "invalid_uri": 5,
    "zone": 6,
    "write": 7,
}


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def command_store(args: argparse.Namespace) -> Store:
    """The store a command works on: ``--root`` with the configured zone, else the
    default store."""
    if args.root:
        default = get_default_store()
        return Store(args.root, zone=default.zone)
    return get_default_store()
