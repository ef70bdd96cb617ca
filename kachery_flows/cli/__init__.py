"""The ``kachery-flows`` command.

Exit codes
----------
0 success; 1 unexpected error; 2 usage error; 3 object not found; 4 corrupt object (or
``verify`` found one); 5 invalid URI; 6 zone error; 7 write error (disk full, permissions).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import (
    CorruptObjectError,
    InvalidURIError,
    KacheryError,
    ObjectNotFoundError,
    StoreWriteError,
    ZoneError,
)
from ._escape import echo

__all__ = ["EXIT_CODES", "main"]

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

# Each module defines ``register(subparsers)``; its commands set ``func`` on their parser.
_COMMAND_MODULES = ("_store", "_zones", "_memo", "_prune")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kachery-flows",
        description="Content-addressed storage for workflows (kachery-cloud compatible).",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 corrupt, "
        "5 invalid URI, 6 zone error, 7 write error",
    )
    parser.add_argument(
        "--root", help="store root (default: $KACHERY_CLOUD_DIR or ~/.kachery-cloud)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    importlib.import_module(f"{__name__}._lineage").register(sub)
    return parser


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def _exit_code(exc: KacheryError) -> int:
    for cls, code in (
        (InvalidURIError, "invalid_uri"),
        (ObjectNotFoundError, "not_found"),
        (CorruptObjectError, "corrupt"),
        (ZoneError, "zone"),
        (StoreWriteError, "write"),
    ):
        if isinstance(exc, cls):
            return EXIT_CODES[code]
    return EXIT_CODES["error"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KacheryError as exc:
        echo(f"kachery-flows: error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        echo(f"kachery-flows: error: {exc}", file=sys.stderr)
        return EXIT_CODES["error"]
    except BrokenPipeError:
        return EXIT_CODES["ok"]
    return code
