"""Files a zone writer controls: entries are hints and objects the truth, only regular
files are read, nothing blocks (SECURITY.md). Every attack runs in a child process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Attack = Callable[..., dict[str, Any]]
Held = Callable[[str, str], None]


def test_an_entry_cannot_quarantine_or_change_your_objects(attack: Attack, held: Held) -> None:
    result = attack("files.entry_names_a_local_object")
    assert result["object_intact"] and result["quarantined"] == []
    for what, seen in result["outcomes"].items():
        assert seen["value_ok"], (what, seen)
        # a size that disagrees is a miss at once; a wrong codec is found when loading
        assert not seen["is_cached"] or what.startswith("codec"), (what, seen)
    held(
        "memo entry naming the victim's local-only object with a wrong size or codec "
        f"({len(result['outcomes'])} variants; is_cached() and call)",
        "held: miss, object intact, nothing quarantined",
    )


def test_malformed_entries_are_misses(attack: Attack, held: Held) -> None:
    result = attack("files.malformed_entries")
    for what, seen in result["outcomes"].items():
        assert seen == "miss (is_cached=False, value ok=True)", (what, seen)
    assert result["computed"] == result["planted"]
    held(
        f"malformed memo entries ({result['planted']}: non-ASCII digits, 10**30 sizes, "
        "odd whitespace, 100 KB tokens, 1 MiB garbage)",
        "held: miss, recomputed, no error",
    )


def test_fifo_refs_never_block(attack: Attack, held: Held) -> None:
    result = attack("files.fifo_refs", timeout=60)
    assert result["zone_ok"] and result["local_ok"]
    assert result["seconds"] < 30
    held("FIFO planted at a zone ref and at a local ref", "held: miss, no hang")


def test_zone_objects_must_be_regular_files(attack: Attack, held: Held) -> None:
    result = attack("files.zone_special_files", timeout=60)
    for what, seen in result["outcomes"].items():
        assert seen.startswith("ZoneError") and "not a regular file" in seen, (what, seen)
        if "symlinked" not in what:  # there the object's name is the file's hash
            assert result["private_sha1"] not in seen
    assert result["staged"] == 0 and result["cached"] == []
    for what in result["outcomes"]:
        held(f"zone object: {what}", "held: ZoneError, nothing copied or hashed")


def test_a_sparse_zone_object_is_not_copied(attack: Attack, held: Held) -> None:
    result = attack("files.sparse_zone_object", size=2 << 30)  # 8x the child's file limit
    assert result["outcome"].startswith("CorruptObjectError"), result
    assert "nothing was copied" in result["outcome"]
    held(
        "2 GiB sparse file as a zone object (no disk for its writer)",
        "fixed: hashed in place, refused without a copy",
    )


def test_swapping_a_zone_object_during_reads(attack: Attack, held: Held) -> None:
    result = attack("files.swap_race", timeout=300, rounds=300)
    outcomes = result["outcomes"]
    assert set(outcomes) <= {
        "loaded, correct",
        "ZoneError",
        "CorruptObjectError",
        "ObjectNotFoundError",
    }, outcomes
    assert outcomes.get("loaded, correct", 0) > 0
    held(
        f"zone object swapped with a /dev/zero symlink during reads ({sum(outcomes.values())}"
        " fetches)",
        "held: the object or a typed error, never the device",
    )


def test_zones_json_cannot_name_code_to_import(attack: Attack, held: Held) -> None:
    result = attack("files.zones_json_names_code", timeout=60)
    assert not result["imported"] and not result["ran"], result
    for what, seen in result["outcomes"].items():
        assert seen.startswith(("ZoneError", "ZoneConfigError")), (what, seen)
        held(f"zones.json naming importable code {what}", "held: ZoneError, nothing imported")


def test_zones_json_must_be_a_small_regular_file_of_yours(attack: Attack, held: Held) -> None:
    result = attack("files.zones_json", timeout=60)
    for what, seen in result["outcomes"].items():
        assert seen.startswith("ZoneError"), (what, seen)
    for what in result["outcomes"]:
        held(f"zones.json: {what}", "held: ZoneError")
