"""Network peers, secrets and terminals (SECURITY.md, "Zones over the network", "Secrets
and terminals"). Every attack runs in a child process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Attack = Callable[..., dict[str, Any]]
Held = Callable[[str, str], None]


def test_kachery_network_answers_are_bounded(attack: Attack, held: Held) -> None:
    result = attack("network.kachery_network_answers", timeout=300)
    for what, seen in result["outcomes"].items():
        assert seen.startswith(("ZoneError", "ZoneUnavailableError")), (what, seen)
        held(f"kachery network findFile answer: {what}", f"held: {seen.split(':')[0]}, bounded")
    # below the 512 MB the bomb inflates to (the servers share the process)
    assert result["maxrss_mb"] < 450, result["maxrss_mb"]


def test_plain_http_mirror_refs_need_an_opt_in(attack: Attack, held: Held) -> None:
    result = attack("network.plain_http_mirror_refs", timeout=120)
    assert result["outcomes"] == {"default": "honest", "opted in": "poisoned"}
    held(
        "memo entry served by a plain-http mirror (on-path attacker)",
        "held: ignored unless plain_http_refs is set",
    )


def test_credentials_never_leave_zone_urls(attack: Attack, held: Held) -> None:
    result = attack("terminal.credentials_in_zone_urls")
    assert result["leaks"] == []
    assert len(result["shown"]) >= 7
    held(
        "user:password in zone URLs (names, reprs, errors, `kachery-flows config`)",
        "held: stripped everywhere",
    )


def test_escape_sequences_from_records_reach_no_terminal(attack: Attack, held: Held) -> None:
    result = attack("terminal.escape_sequences_in_records")
    assert result["raw_controls"] == [] and result["escaped"], result["output"]
    assert "function:" in result["output"]
    held(
        "record fields with ANSI/OSC escapes, CR and bidi overrides (`kachery-flows info`)",
        "held: escaped by cli._escape.printable",
    )
