"""Secrets and terminals: what the command line and messages show (run in a child
process by ``sec_runner.py``)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from kachery_flows import Store
from kachery_flows.cli import main
from kachery_flows.errors import KacheryError
from kachery_flows.records import RECORD_SCHEMA

SECRET = "SUPERSECRET42"


def _cli(*argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(list(argv))
    return out.getvalue() + err.getvalue()


def attack_credentials_in_zone_urls(work: Path) -> dict[str, Any]:
    """Zone URLs carrying user:password: never in names, reprs, messages or `config`."""
    from kachery_flows.zones import HttpZone, open_zone

    shown: list[str] = []
    os.environ["KACHERY_ZONE"] = f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix"
    os.environ["KACHERY_CLOUD_DIR"] = str(work / "root")
    zone = open_zone(os.environ["KACHERY_ZONE"])
    shown += [zone.name, repr(zone), repr(Store(work / "s", zone=zone))]
    shown.append(_cli("config"))
    shown.append(_cli("config", "--json"))
    for url in (
        f"https://user:{SECRET}@example.org/x?q=1",
        f"ftp2://u:{SECRET}@/",
        f"file://u:{SECRET}@host/p",
    ):
        try:
            open_zone(url)
        except KacheryError as exc:
            shown.append(str(exc))
    shown.append(repr(HttpZone(f"https://user:{SECRET}@example.org/k")))
    return {"shown": shown, "leaks": [s for s in shown if SECRET in s]}


def attack_escape_sequences_in_records(work: Path) -> dict[str, Any]:
    """A record whose fields carry terminal escape sequences, shown by `kachery-flows
    info`: every control and bidi-override character is escaped."""
    store = Store(work / "root", fsync=False)
    os.environ["KACHERY_CLOUD_DIR"] = str(store.root)
    os.environ.pop("KACHERY_ZONE", None)
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mRED\r\u202eevil\x9b"
    record = store.put_json(
        {
            "schema": RECORD_SCHEMA,
            "function": hostile,
            "host": hostile,
            "code": hostile,
            "inputs": {hostile: {"type": hostile, "value": hostile, "token": hostile}},
            "result": {"uri": hostile, "codec": hostile, "type": hostile},
        }
    )
    output = _cli("info", record.uri)
    bad = sorted(
        {
            hex(ord(c))
            for c in output
            if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"
        }
    )
    return {"output": output, "raw_controls": bad, "escaped": "\\x1b" in output}
