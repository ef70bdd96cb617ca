from __future__ import annotations

import json
import pickle

import pytest

from kachery_flows import InvalidURIError, Ref, format_uri, parse_uri

H = "d9e989f651cdd269d7f9bb8a215d024d8d283688"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (None, f"sha1://{H}"),
        ("example.txt", f"sha1://{H}?label=example.txt"),
        ("a b/c?d=e&f.txt", f"sha1://{H}?label=a%20b/c%3Fd%3De%26f.txt"),
        ("é ü/x?.txt", f"sha1://{H}?label=%C3%A9%20%C3%BC/x%3F.txt"),
    ],
)
def test_format_matches_kachery_cloud(label: str | None, expected: str) -> None:
    assert format_uri(H, label) == expected
    assert Ref(H, label).uri == expected
    assert parse_uri(expected).label == label


@pytest.mark.parametrize(
    ("uri", "label"),
    [
        (f"sha1://{H}", None),
        (f"sha1://{H}?label=x.txt&location=/data/x.txt", "x.txt"),
        (f"sha1://{H}?location=/a/b=c", None),
        (f"sha1://{H}/some/name.txt", "some/name.txt"),
        (f"kachery:default:sha1:{H}:example.txt", "example.txt"),
        (f"kachery::sha1:{H}", None),
        (f"kachery:scratch:sha1:{H}:a%20b%3Ac", "a b:c"),
        (f"sha1://{H}?label=v1..2.txt", "v1..2.txt"),
    ],
)
def test_accepted_forms(uri: str, label: str | None) -> None:
    ref = parse_uri(uri)
    assert ref.sha1 == H
    assert ref.label == label


@pytest.mark.parametrize(
    "uri",
    [
        "",
        H,
        f"sha1://{H[:-1]}",
        f"sha1://{H}0",
        f"sha1://{H.upper()}",
        f"sha1://{H[:-1]}g",
        "sha1://../../etc/passwd",
        f"sha1://{H}/../../etc/passwd",
        f"sha1://{H}/%2e%2e/x",
        f"sha1://{H}/%2E%2E/x",
        f"sha1://{H}\\x",
        f"sha1://{H}?label=a\\b",
        f"sha1://{H}\x00",
        f"sha1://{H}?label=x\x00",
        f"md5://{H}",
        f"https://example.org/{H}",
        f"gh://a/b/c/{H}",
        f"kachery:z:md5:{H}",
        f"kachery:z:sha1:{H.upper()}",
        "kachery:z:sha1",
        f"kachery:a b:sha1:{H}",
        f"kachery:{'z' * 101}:sha1:{H}",
        f"kachery:zone\u00a0x:sha1:{H}",
        f"sha1://{H}?label=" + "x" * 10000,
        f"sha1:/{H}",
        f"SHA1://{H}",
        f" sha1://{H}",
    ],
)
def test_rejected_forms(uri: str) -> None:
    with pytest.raises(InvalidURIError):
        parse_uri(uri)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidURIError):
        parse_uri(12)  # type: ignore[arg-type]


def test_ref_value_semantics() -> None:
    a = Ref(H, "a.txt", "text")
    b = Ref(H, "b.txt")
    assert a == b and hash(a) == hash(b)
    assert str(a) == f"sha1://{H}?label=a.txt"
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(a)).codec == "text"
    assert json.loads(json.dumps({"r": str(a)}))["r"] == a.uri
    assert Ref.parse(a) is a
    with pytest.raises(AttributeError):
        a.sha1 = "x"  # type: ignore[misc]
    with pytest.raises(InvalidURIError):
        Ref("not-a-hash")
    with pytest.raises(ValueError, match="unknown codec"):
        Ref(H, codec="zip")


@pytest.mark.parametrize(
    ("uri", "zone"),
    [
        (f"kachery:default:sha1:{H}:example.txt", "default"),
        (f"kachery:franklab.default:sha1:{H}", "franklab.default"),
        (f"kachery:{'z' * 100}:sha1:{H}", "z" * 100),
        (f"kachery::sha1:{H}:x.txt", None),
        (f"sha1://{H}?label=x.txt", None),
        (f"sha1://{H}/x.txt", None),
    ],
)
def test_zone_is_kept_only_for_kachery_uris(uri: str, zone: str | None) -> None:
    assert parse_uri(uri).zone == zone


def test_zone_takes_no_part_in_value_semantics() -> None:
    ref = parse_uri(f"kachery:aind:sha1:{H}:a.npy")
    plain = Ref(H)
    assert ref == plain and hash(ref) == hash(plain) and {ref, plain} == {plain}
    assert ref.uri == str(ref) == f"sha1://{H}?label=a.npy"
    assert ref.with_label("b.npy").zone == "aind"
    assert pickle.loads(pickle.dumps(ref)).zone == "aind"
    assert Ref(H, zone="aind").zone == "aind"
    for bad in ("", "a:b", "a b", "z" * 101):
        with pytest.raises(InvalidURIError, match="zone"):
            Ref(H, zone=bad)


def test_guess_codec() -> None:
    assert Ref(H, "x.NPY").guess_codec() == "npy"
    assert Ref(H, "x.json").guess_codec() == "json"
    assert Ref(H, "x.bin").guess_codec() is None
    assert Ref(H, "x.bin", "pkl").guess_codec() == "pkl"
