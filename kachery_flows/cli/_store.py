"""Store commands: store, load, cat, info, verify, ls-cache, config, demo."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .._progress import PROGRESS_THRESHOLD, ProgressMeter
from ..config import load_settings
from ..uri import parse_uri, redact_url
from ._common import EXIT_CODES, command_store, print_json
from ._escape import echo


def _meter(size: int, what: str, force: bool) -> ProgressMeter | None:
    if force or (size >= PROGRESS_THRESHOLD and sys.stderr.isatty()):
        return ProgressMeter(size, what)
    return None


def cmd_store(args: argparse.Namespace) -> int:
    store = command_store(args)
    path = Path(args.file)
    label = args.label if args.label is not None else path.name
    meter = _meter(path.stat().st_size, f"storing {path.name}", args.progress)
    ref = store.put_file(path, label, local=args.local, progress=meter)
    if meter is not None:
        meter.close()
    if args.json:
        print_json({"uri": ref.uri, "sha1": ref.sha1, "size": path.stat().st_size})
    else:
        echo(ref.uri)
    return EXIT_CODES["ok"]


def cmd_load(args: argparse.Namespace) -> int:
    store = command_store(args)
    result = store.load_file(args.uri, dest=args.output, verify=args.verify)
    if args.json:
        print_json({"uri": parse_uri(args.uri).uri, "path": result})
    else:
        echo(result)
    return EXIT_CODES["ok"]


def cmd_cat(args: argparse.Namespace) -> int:
    store = command_store(args)
    path = store.load_file(args.uri, verify=args.verify)
    with open(path, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
    sys.stdout.flush()
    return EXIT_CODES["ok"]


def cmd_info(args: argparse.Namespace) -> int:
    from ._describe import describe
    from ._memo import print_description

    info = describe(command_store(args), args.uri)
    if args.json:
        print_json(info)
    else:
        print_description(info)
    return EXIT_CODES["ok"]


def cmd_verify(args: argparse.Namespace) -> int:
    store = command_store(args)
    meter = (
        ProgressMeter(None, f"verifying {store.root}")
        if args.progress or (sys.stderr.isatty() and not args.json)
        else None
    )
    report = store.verify(
        quarantine=args.quarantine,
        remove_temp=args.remove_temp,
        temp_grace_seconds=args.temp_grace_hours * 3600.0,
        progress=meter,
    )
    if meter is not None:
        meter.close()
    if args.json:
        print_json(report.to_dict())
    else:
        echo(f"checked {report.checked} objects ({report.bytes_checked} bytes) in {store.root}")
        for sha1 in report.corrupt:
            echo(f"CORRUPT sha1://{sha1}")
        for path in report.quarantined:
            echo(f"quarantined -> {path}")
        for path in report.temp_files:
            state = "removed" if path in report.removed_temp_files else "found"
            echo(f"orphan temp file ({state}): {path}")
        echo("OK" if report.ok else f"{len(report.corrupt)} corrupt object(s)")
    return EXIT_CODES["ok"] if report.ok else EXIT_CODES["corrupt"]


def cmd_ls_cache(args: argparse.Namespace) -> int:
    from .._scan import iter_objects

    store = command_store(args)
    # Streamed (a million objects are never all in memory); JSON is one array, one row
    # per line.
    write = sys.stdout.write
    separator = "[\n" if args.json else ""
    for sha1, _path, st in iter_objects(str(store.root)):
        if args.json:
            write(f'{separator}{{"sha1": "{sha1}", "size": {st.st_size}}}')
            separator = ",\n"
        else:
            write(f"sha1://{sha1}\t{st.st_size}\n")
    if args.json:
        write("[]\n" if separator == "[\n" else "\n]\n")
    return EXIT_CODES["ok"]


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    store = command_store(args)
    view = {
        "root": str(store.root),
        "KACHERY_CLOUD_DIR": os.environ.get("KACHERY_CLOUD_DIR"),
        "KACHERY_ZONE": redact_url(settings.zone) if settings.zone else settings.zone,
        "zones_file": str(settings.zones_file),
        "zone": store.zone.name if store.zone is not None else None,
        "zone_type": type(store.zone).__name__ if store.zone is not None else None,
        "zone_writable": store.zone.writable if store.zone is not None else None,
        "fsync": store.fsync,
        "group_shared": store.group_shared,
    }
    if args.json:
        print_json(view)
    else:
        for key, value in view.items():
            echo(f"{key}: {value}")
    return EXIT_CODES["ok"]


def cmd_demo(args: argparse.Namespace) -> int:
    from .._demo import run_demo

    run_demo(command_store(args))
    return EXIT_CODES["ok"]


def register(sub: Any) -> None:
    """Add the store commands to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("store", help="store a file; print its sha1:// URI")
    p.add_argument("file", help="the file to store")
    p.add_argument("--label", help="label in the URI (default: the file name)")
    p.add_argument("--local", action="store_true", help="do not upload to the zone")
    p.add_argument("--progress", action="store_true", help="always show progress")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_store)

    p = sub.add_parser("load", help="print a local path of the object (or copy it to -o)")
    p.add_argument("uri", help="a sha1:// or kachery: URI")
    p.add_argument("-o", "--output", help="copy the object to this path")
    p.add_argument("--verify", action="store_true", help="re-hash the local copy first")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("cat", help="write the object's bytes to stdout")
    p.add_argument("uri", help="a sha1:// or kachery: URI")
    p.add_argument("--verify", action="store_true", help="re-hash the local copy first")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser(
        "info", help="where an object is and its size; a memo key's or record's provenance"
    )
    p.add_argument(
        "uri", metavar="URI|KEY", help="a URI, or a memo key (40 hex digits, see gc and info)"
    )
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="re-hash all local objects; exit 4 if any is corrupt")
    p.add_argument("--quarantine", action="store_true", help="move corrupt objects aside")
    p.add_argument("--remove-temp", action="store_true", help="delete orphan temp files")
    p.add_argument(
        "--temp-grace-hours",
        type=float,
        default=1.0,
        help="temp files younger than this may belong to a live writer (default 1)",
    )
    p.add_argument("--progress", action="store_true", help="always show progress")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("ls-cache", help="list the objects in the local store")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_ls_cache)

    p = sub.add_parser("config", help="show the effective configuration")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("demo", help="store and load one object of each kind")
    p.set_defaults(func=cmd_demo)
