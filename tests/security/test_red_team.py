"""The red-team pass: attack classes beyond the ones reviewed in issue 13 (listed in
SECURITY.md with the outcome of each). Every attack runs in a child process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Attack = Callable[..., dict[str, Any]]
Held = Callable[[str, str], None]


def test_huge_uris_labels_and_zone_names(attack: Attack, held: Held) -> None:
    result = attack("redteam.huge_uris_and_labels")
    for what, seen in result["outcomes"].items():
        kind, _, seconds = seen.partition(" in ")
        assert kind == "InvalidURIError", (what, seen)
        assert float(seconds.split()[0]) < 1.0, (what, seen)
        held(f"URI: {what}", "held: InvalidURIError before any work")


def test_npy_bomb_as_a_memo_result(attack: Attack, held: Held) -> None:
    result = attack("redteam.npy_bomb_as_memo_result")
    for what, seen in result["outcomes"].items():
        assert seen == {"value_ok": True, "object_kept": True}, (what, seen)
    assert result["runs"] == 3
    assert result["maxrss_mb"] < 400
    held(
        "memo entry naming an intact npy announcing 8 TB (formats 1.0, 2.0, 3.0)",
        "fixed: miss, recomputed, object not quarantined (was quarantined)",
    )


def test_records_nested_deep_or_too_big(attack: Attack, held: Held) -> None:
    result = attack("redteam.deep_records")
    assert result["deep"] is None and result["big"] is None
    held("record object nested 1M deep / larger than 1 MiB", "held: unreadable, no crash")


def test_npy_headers_of_every_format_version(attack: Attack, held: Held) -> None:
    result = attack("redteam.npy_headers_every_version")
    assert set(result["outcomes"].values()) == {"DecodeError"}, result["outcomes"]
    assert result["latin1_fields_ok"]
    held(
        "npy header bombs in format 1.0, 2.0, 3.0 and an unknown version",
        "held: DecodeError before allocation (3.0 now checked by us too)",
    )


def test_hard_linked_zone_objects(attack: Attack, held: Held) -> None:
    result = attack("redteam.hard_linked_zone_object")
    assert result["outcome"] == "CorruptObjectError" and result["cached"] == []
    held(
        f"zone object hard-linked to another file (fs.protected_hardlinks="
        f"{result['protected_hardlinks']})",
        "held: hash mismatch; links to unreadable files are the kernel's to refuse",
    )
