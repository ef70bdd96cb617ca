"""Pickles: no zone or record writer runs code, crashes the reader or exhausts memory
through a pickle (SECURITY.md, "Pickles"). Every attack runs in a child process."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Attack = Callable[..., dict[str, Any]]
Held = Callable[[str, str], None]


def test_known_gadget_families_are_refused(attack: Attack, held: Held) -> None:
    result = attack("pickles.gadgets")
    assert not result["pwned"]
    for what, seen in result["outcomes"].items():
        expected = "DecodeError" if "out-of-bounds" in what else "UnsafePickleError"
        assert seen == [expected] * 3, (what, seen)  # load_pkl, Ref.load, dask.load_ref
    assert result["maxrss_mb"] < 400, result["maxrss_mb"]
    for what in result["outcomes"]:
        held(
            f"pickle gadget: {what} (load_pkl, Ref.load .pkl, dask.load_ref)",
            "held: typed error, no code, no crash",
        )


def test_fuzzed_opcode_streams_stay_inside_the_decoder(attack: Attack, held: Held) -> None:
    examples = int(os.environ.get("KACHERY_FLOWS_SECURITY_FUZZ", "1500"))
    result = attack("pickles.fuzz", timeout=600, examples=examples)
    assert result["tried"] >= min(examples, 1000)
    assert result["code_events"] == []
    assert result["loaded"] > 0 and result["refused"] > 0  # the fuzz reaches both sides
    held(
        f"pickle opcode streams fuzzed with Hypothesis ({result['tried']}: "
        f"{result['loaded']} loaded, {result['refused']} refused, {result['malformed']} "
        "malformed)",
        "held: only containers/scalars/arrays, output <= 256x input, no code",
    )


def test_a_pickle_under_another_codec_never_reaches_pickle(attack: Attack, held: Held) -> None:
    result = attack("pickles.unpickle_choke_point")
    assert not result["ran"]
    outcomes = result["outcomes"]
    for codec in ("text", "csv", "pickle", "PKL", ""):
        assert outcomes[codec] == "DecodeError", (codec, outcomes)  # outside the closed set
    assert outcomes["pkl"] == "UnsafePickleError"  # the trust rule: this store did not pickle it
    assert outcomes["json"] == "DecodeError" and outcomes["npy"] == "DecodeError"
    assert outcomes["bytes"] == "value bytes"
    held(
        "pickle stored under a .txt label / unknown or mismatched codec (load_result, "
        "KacherySerializer path)",
        "held: DecodeError or UnsafePickleError, never unpickled",
    )


def test_an_intact_pickle_that_fails_to_load_says_so(attack: Attack, held: Held) -> None:
    result = attack("pickles.intact_undecodable")
    assert result["codec"] == "pkl"
    assert result["error"] == "DecodeError"
    assert "not a loadable pickle" in result["message"]
    assert "missing or corrupt" not in result["message"]
    assert result["still_there"] and result["quarantined"] == []
    held(
        "intact trusted pickle of an exception class that cannot be unpickled",
        "held: DecodeError naming the cause; object not quarantined",
    )
