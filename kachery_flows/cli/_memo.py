"""Action-cache commands: ``gc``, and the text view ``info`` uses for records."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import EXIT_CODES, command_store, print_json
from ._escape import echo


def _print_record(record: dict[str, Any], indent: str = "") -> None:
    echo(f"{indent}function: {record.get('function')}")
    version = record.get("version")
    echo(f"{indent}version: {version}" if version is not None else f"{indent}version: -")
    echo(f"{indent}code: {record.get('code')}")
    echo(f"{indent}inputs:")
    for name, item in (record.get("inputs") or {}).items():
        detail = []
        for field in ("ref", "value", "dtype", "shape"):
            if field in item:
                detail.append(
                    f"{field}={item[field]!r}" if field == "value" else f"{field}={item[field]}"
                )
        detail.append(f"token={item.get('token')}")
        echo(f"{indent}  {name}: {item.get('type')} " + " ".join(detail))
    result = record.get("result") or {}
    echo(
        f"{indent}result: {result.get('uri')} ({result.get('codec')}, "
        f"{result.get('size')} bytes, {result.get('type')})"
    )
    echo(f"{indent}duration: {record.get('duration')} s")
    echo(f"{indent}host: {record.get('host')}")
    echo(f"{indent}created: {record.get('created')}")
    echo(
        f"{indent}kachery-flows: {record.get('kachery_flows_version')}, "
        f"python {record.get('python')}"
    )


def print_description(info: dict[str, Any]) -> None:
    """Print what :func:`kachery_flows.cli._describe.describe` returned, for people."""
    record = info.get("record")
    if info.get("kind") == "memo":
        echo(f"key: {info['key']}")
        echo(f"record: {info['record_uri']}")
        present = "present" if info["result_present"] else "MISSING (next call recomputes)"
        echo(f"result: {info['result_uri']} ({present})")
        if record is not None:
            _print_record(record, "  ")
        return
    for key, value in info.items():
        if key not in ("record", "produced_by"):
            echo(f"{key}: {value}")
    if record is not None:
        echo("record:")
        _print_record(record, "  ")
    for key in info.get("produced_by", []):
        echo(f"produced by memo key: {key}")


def cmd_gc(args: argparse.Namespace) -> int:
    from ..garbage import collect_garbage

    report = collect_garbage(
        command_store(args),
        older_than_days=args.older_than,
        expire_records_days=args.expire_records,
        dry_run=args.dry_run,
    )
    if args.json:
        print_json(report.to_dict())
        return EXIT_CODES["ok"]
    verb = "would delete" if report.dry_run else "deleted"
    for key in report.expired_records:
        echo(f"expired record: {key}")
    for sha1 in report.deleted_objects:
        echo(f"{verb}: sha1://{sha1}")
    for path in report.removed_temp_files + report.removed_lock_files:
        echo(f"{verb}: {path}")
    echo(
        f"{report.live_records} live record(s); {verb} {len(report.deleted_objects)} "
        f"cache object(s), {report.deleted_bytes} bytes; "
        f"{len(report.removed_temp_files)} temp file(s); "
        f"{len(report.expired_records)} record(s) expired; "
        f"{len(report.kept_recent)} unreachable object(s) younger than the grace period kept"
    )
    if report.unreadable_records:
        echo(
            f"kept every cache object: the records of {len(report.unreadable_records)} live "
            "key(s) cannot be read, so what they reach is unknown; `kachery-flows info KEY` "
            "shows them, and clearing those keys lets gc collect again:"
        )
        for key in report.unreadable_records:
            echo(f"  {key}")
    return EXIT_CODES["ok"]


def register(sub: Any) -> None:
    """Add the action-cache commands to ``sub``."""
    p = sub.add_parser(
        "gc",
        help="delete orphan temp files and cache results no live memo record reaches",
        description="Objects stored with store_* are never deleted; nothing in a zone is.",
    )
    p.add_argument(
        "--older-than",
        type=float,
        default=1.0,
        metavar="DAYS",
        help="grace period: nothing younger is deleted (default 1)",
    )
    p.add_argument(
        "--expire-records",
        type=float,
        default=None,
        metavar="DAYS",
        help="first forget memo entries not used for DAYS (least recently used first)",
    )
    p.add_argument("--dry-run", action="store_true", help="report only; delete nothing")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=cmd_gc)
