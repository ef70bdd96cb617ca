"""The ``kachery-flows`` command.

Exit codes
----------
0 success; 1 unexpected error; 2 usage error; 3 object not found; 4 corrupt object (or
``verify`` found one); 5 invalid URI; 6 zone error; 7 write error (disk full, permissions).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import (
    CorruptObjectError,
    InvalidURIError,
    KacheryError,
    ObjectNotFoundError,
    StoreWriteError,
    ZoneError,
)
from . import _lineage, _memo, _prune, _store, _zones
from ._common import EXIT_CODES
from ._escape import echo

__all__ = ["EXIT_CODES", "main"]

# Each module defines ``register(subparsers)``; its commands set ``func`` on their parser.
_COMMAND_MODULES = (_store, _zones, _memo, _prune, _lineage)


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
    for module in _COMMAND_MODULES:
        module.register(sub)
    return parser


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
