"""``kachery-flows prune``: bring a local store under a size bound (see
:mod:`kachery_flows._evict`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._progress import ProgressMeter
from ._common import EXIT_CODES, command_store, print_json


def cmd_prune(args: argparse.Namespace) -> int:
    from .._evict import prune
    from ..config import load_settings

    store = command_store(args)
    max_size = args.max_size if args.max_size is not None else load_settings().max_size
    if max_size is None:
        print(
            "kachery-flows: error: no size bound: give --max-size or set KACHERY_FLOWS_MAX_SIZE",
            file=sys.stderr,
        )
        return EXIT_CODES["usage"]
    verb = "would evict" if args.dry_run else "evicted"

    def show(sha1: str, size: int) -> None:
        print(f"{verb}: sha1://{sha1}\t{size}")

    meter = (
        ProgressMeter(None, f"scanning {store.root}")
        if args.progress or (sys.stderr.isatty() and not args.json)
        else None
    )
    try:
        report = prune(
            store,
            max_size,
            dry_run=args.dry_run,
            on_evict=None if args.json else show,
            progress=meter,
        )
    except ValueError as exc:
        print(f"kachery-flows: error: --max-size: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    finally:
        if meter is not None:
            meter.close()
    if args.json:
        print_json(report.to_dict())
        return EXIT_CODES["ok"]
    zone = store.zone.name if store.zone is not None else None
    print(
        f"{report.objects} object(s), {report.size_before} bytes; {verb} {report.evicted} "
        f"({report.evicted_bytes} bytes) held by zone {zone}; {report.size_after} bytes "
        f"left (bound {report.max_size}); kept {report.kept_local_only} local-only and "
        f"{report.kept_open} open object(s)"
    )
    if not report.ok:
        reason = "no zone is configured" if zone is None else "the rest is local-only or open"
        print(f"still over the bound: {reason}")
    return EXIT_CODES["ok"]


def register(sub: Any) -> None:
    """Add the ``prune`` command to ``sub``."""
    p = sub.add_parser(
        "prune",
        help="evict least-recently-used local objects the zone holds, down to a size",
        description="Only objects the zone verifiably holds are evicted (checked with the "
        "zone, one by one); objects only this store has, and objects open or "
        "memory-mapped by a process of this user, are kept.",
    )
    p.add_argument(
        "--max-size",
        metavar="SIZE",
        help="bound: bytes, 200G (K/M/G/T) or 80%% of the disk (default $KACHERY_FLOWS_MAX_SIZE)",
    )
    p.add_argument("--dry-run", action="store_true", help="report only; evict nothing")
    p.add_argument("--progress", action="store_true", help="always show progress")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_prune)
