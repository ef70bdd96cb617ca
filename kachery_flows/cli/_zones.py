"""Zone commands: push, pull, ls-zone."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._progress import PROGRESS_THRESHOLD, ProgressMeter
from ..config import load_settings
from ..errors import ZoneError, ZonePermissionError
from ..store import Store
from ..uri import parse_uri
from ._common import EXIT_CODES, print_json
from ._escape import echo


def _zone_store(args: argparse.Namespace) -> Store:
    settings = load_settings()
    spec = args.zone or settings.zone
    if not spec:
        raise ZoneError("no zone configured: set KACHERY_ZONE or pass --zone")
    return Store(args.root or settings.root, zone=spec)


class _Meter:
    """Progress for one transfer: shown with ``--progress``, or on a terminal once the
    transfer passes PROGRESS_THRESHOLD bytes (sizes of downloads are not known ahead)."""

    def __init__(self, description: str, total: int | None, force: bool) -> None:
        self.description = description
        self.total = total
        self.show = force or sys.stderr.isatty()
        self.force = force
        self.done = 0
        self.meter: ProgressMeter | None = None

    def __call__(self, n: int) -> None:
        self.done += n
        if self.meter is None and self.show and (self.force or self.done >= PROGRESS_THRESHOLD):
            self.meter = ProgressMeter(self.total, self.description)
            self.meter(self.done)
        elif self.meter is not None:
            self.meter(n)

    def close(self) -> None:
        if self.meter is not None:
            self.meter.close()


def cmd_push(args: argparse.Namespace) -> int:
    store = _zone_store(args)
    zone = store.zone
    assert zone is not None
    if not zone.writable:
        raise ZonePermissionError(f"zone {zone.name} is read-only: cannot push")
    rows: list[dict[str, Any]] = []
    for text in args.uris:
        ref = parse_uri(text)
        size = store.object_path(ref).stat().st_size if store.object_path(ref).is_file() else 0
        meter = _Meter(f"pushing {ref.sha1[:12]}", size, args.progress)
        store.upload(ref, progress=meter, replace=args.replace)
        meter.close()
        rows.append({"uri": ref.uri, "sha1": ref.sha1, "size": size, "zone": zone.name})
        if not args.json:
            echo(ref.uri)
    if args.json:
        print_json(rows)
    return EXIT_CODES["ok"]


def cmd_pull(args: argparse.Namespace) -> int:
    store = _zone_store(args)
    rows: list[dict[str, Any]] = []
    for text in args.uris:
        ref = parse_uri(text)
        meter = _Meter(f"pulling {ref.sha1[:12]}", None, args.progress)
        path = store.download(ref, progress=meter)
        meter.close()
        rows.append({"uri": ref.uri, "sha1": ref.sha1, "path": path})
        if not args.json:
            echo(path)
    if args.json:
        print_json(rows)
    return EXIT_CODES["ok"]


def cmd_ls_zone(args: argparse.Namespace) -> int:
    store = _zone_store(args)
    assert store.zone is not None
    hashes = sorted(store.zone.iter_hashes())
    if args.json:
        print_json([{"uri": f"sha1://{h}", "sha1": h} for h in hashes])
    else:
        for h in hashes:
            echo(f"sha1://{h}")
    return EXIT_CODES["ok"]


def register(sub: Any) -> None:
    """Add the zone commands to ``sub`` (an argparse subparsers object)."""
    zone_help = "zone spec (default: $KACHERY_ZONE): a name from zones.json or a URL"

    p = sub.add_parser("push", help="upload local objects to the zone")
    p.add_argument("uris", nargs="+", metavar="URI", help="sha1:// URIs of the objects")
    p.add_argument(
        "--replace",
        action="store_true",
        help="verify the local copy and replace the zone's (repairs a corrupt zone copy)",
    )
    p.add_argument("--zone", help=zone_help)
    p.add_argument("--progress", action="store_true", help="always show progress")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser(
        "pull", help="download objects from the zone into the local store (verified)"
    )
    p.add_argument("uris", nargs="+", metavar="URI", help="sha1:// URIs of the objects")
    p.add_argument("--zone", help=zone_help)
    p.add_argument("--progress", action="store_true", help="always show progress")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("ls-zone", help="list the objects in the zone")
    p.add_argument("--zone", help=zone_help)
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_ls_zone)
