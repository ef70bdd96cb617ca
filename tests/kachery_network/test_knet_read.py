"""Reading from the kachery network zone through the store."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from kachery_protocol_server import Fault, KacheryProtocolServer
from knet_data import API_KEY, FAST, OUTSIDER_KEY

import kachery_flows as kf
from kachery_flows import (
    ObjectNotFoundError,
    Store,
    ZoneError,
    ZonePermissionError,
    ZoneUnavailableError,
    parse_uri,
)
from kachery_flows.zones import open_zone
from kachery_flows.zones.kachery_network import KacheryNetworkZone


def _staging_is_empty(store: Store) -> bool:
    return not store.staging_dir.exists() or not any(store.staging_dir.iterdir())


def test_public_object_loads_without_an_account(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    sha1 = kserver.add_object("default", data)
    store = Store(tmp_path / "s", zone=zone)
    assert store.exists(f"sha1://{sha1}")
    assert store.load_bytes(f"sha1://{sha1}") == data
    assert store.object_path(f"sha1://{sha1}").read_bytes() == data
    finds = kserver.requests_to("/api/findFile")
    assert [r.json() for r in finds] == [
        {"type": "findFileRequest", "hashAlg": "sha1", "hash": sha1, "zoneName": "default"}
    ] * 2
    assert all("authorization" not in r.headers for r in kserver.log)
    assert finds[0].headers["content-type"] == "application/json"
    before = len(kserver.log)
    assert store.load_bytes(f"sha1://{sha1}") == data
    assert len(kserver.log) == before  # served from the local cache
    assert _staging_is_empty(store)


def test_kachery_uri_is_fetched_through_its_own_zone(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    kserver.zones["figures"] = kserver.zones["default"]
    data = b'{"plot": [1, 2, 3]}'
    sha1 = kserver.add_object("figures", data)
    store = Store(tmp_path / "s")  # no zone configured at all
    uri = f"kachery:figures:sha1:{sha1}:fig.json"
    assert store.exists(uri)
    assert store.load_json(uri) == {"plot": [1, 2, 3]}
    zones = {r.json()["zoneName"] for r in kserver.requests_to("/api/findFile")}
    assert zones == {"figures"}
    # the same hash as sha1:// is now local, whatever the URI form
    assert store.load_bytes(f"sha1://{sha1}") == data
    # without a zone hint and without a configured zone, nothing is asked
    missing = "sha1://" + "1" * 40
    n = len(kserver.log)
    with pytest.raises(ObjectNotFoundError, match="no zone is configured"):
        store.load_bytes(missing)
    assert len(kserver.log) == n


def test_kachery_uri_zone_overrides_a_configured_kachery_zone(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("scratch", b"scratch bytes")
    store = Store(tmp_path / "s", zone=zone)  # configured zone: default
    with pytest.raises(ObjectNotFoundError):
        store.load_bytes(f"sha1://{sha1}")
    assert store.load_bytes(f"kachery:scratch:sha1:{sha1}") == b"scratch bytes"
    zones = [r.json()["zoneName"] for r in kserver.requests_to("/api/findFile")]
    assert zones == ["default", "scratch"]
    info = store.info(f"kachery:scratch:sha1:{sha1}")
    assert info["local"] is True


def test_empty_zone_kachery_uri_uses_the_configured_zone(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("default", b"local-form uri")
    ref = parse_uri(f"kachery::sha1:{sha1}:x.txt")
    assert ref.zone is None
    store = Store(tmp_path / "s", zone=zone)
    assert store.load_text(ref) == "local-form uri"


def test_sha1_uris_use_the_configured_default_zone(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha1 = kserver.add_object("default", "héllo".encode())
    monkeypatch.setenv("KACHERY_ZONE", "kachery:default")
    assert kf.exists(f"sha1://{sha1}")
    assert kf.load_text(f"sha1://{sha1}?label=h.txt") == "héllo"
    store = kf.get_default_store()
    assert isinstance(store.zone, KacheryNetworkZone)
    assert store.zone.zone_name == "default" and store.zone.base_url == kserver.url
    assert store.info(f"sha1://{sha1}")["local"] is True


def test_missing_object_is_a_clean_not_found(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s", zone=zone)
    uri = "sha1://" + "2" * 40
    assert not store.exists(uri)
    with pytest.raises(ObjectNotFoundError) as info:
        store.load_bytes(uri)
    assert uri in str(info.value) and "kachery:default" in str(info.value)
    assert not store.object_path(uri).exists()
    assert _staging_is_empty(store)
    assert len(kserver.requests_to("/api/findFile")) == 2  # no retries for "not found"


def test_private_zone_needs_a_key(
    kserver: KacheryProtocolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha1 = kserver.add_object("lab", b"lab secret")
    assert f"labs/lab/sha1/{sha1[:2]}/{sha1[2:4]}/{sha1[4:6]}/{sha1}" in kserver.bucket
    store = Store(tmp_path / "s")
    uri = f"kachery:lab:sha1:{sha1}"
    with pytest.raises(ZonePermissionError, match="KACHERY_API_KEY") as info:
        store.load_bytes(uri)
    assert isinstance(info.value, PermissionError)
    assert "kachery.vercel.app" in str(info.value)
    monkeypatch.setenv("KACHERY_API_KEY", OUTSIDER_KEY)
    with pytest.raises(ZonePermissionError, match="refused or has no access"):
        store.load_bytes(uri)
    monkeypatch.setenv("KACHERY_API_KEY", API_KEY)
    assert store.load_bytes(uri) == b"lab secret"
    last = kserver.requests_to("/api/findFile")[-1]
    assert last.headers["authorization"] == f"Bearer {API_KEY}"
    assert len(kserver.requests_to("/api/findFile")) == 3  # permission errors: no retries


def test_unknown_zone_is_a_zone_error_not_a_retry(
    kserver: KacheryProtocolServer, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s")
    with pytest.raises(ZoneError, match="Zone not found") as info:
        store.load_bytes("kachery:nosuchzone:sha1:" + "3" * 40)
    assert not isinstance(info.value, ZonePermissionError)
    assert len(kserver.requests_to("/api/findFile")) == 1


def test_open_zone_spec(kserver: KacheryProtocolServer) -> None:
    zone = open_zone("kachery:lab")
    assert isinstance(zone, KacheryNetworkZone)
    assert zone.zone_name == "lab" and zone.base_url == kserver.url
    assert "kachery:lab" in zone.name
    for bad in ("kachery:", "kachery:a b", "kachery:a:b", "kachery:" + "z" * 101):
        with pytest.raises(ZoneError, match="kachery"):
            open_zone(bad)


def test_unsupported_operations_declare_themselves(zone: KacheryNetworkZone) -> None:
    assert zone.writable and not zone.listable and zone.shared_lock_dir() is None
    assert not zone.supports_refs and not zone.deletable
    calls = [
        lambda: list(zone.iter_hashes()),
        lambda: zone.delete("4" * 40),
        lambda: zone.get_ref("x"),
        lambda: zone.set_ref("x", "y"),
    ]
    for call in calls:
        with pytest.raises(ZoneError, match="kachery network has no such operation"):
            call()


def test_zone_pickles_and_still_works(
    kserver: KacheryProtocolServer, zone: KacheryNetworkZone, tmp_path: Path
) -> None:
    sha1 = kserver.add_object("default", b"travels to workers")
    assert zone.has(sha1)
    clone = pickle.loads(pickle.dumps(zone))
    assert clone.zone_name == "default" and clone.retry == FAST
    dest = tmp_path / "out"
    clone.get(sha1, dest)
    assert dest.read_bytes() == b"travels to workers"


def test_retry_budget_from_environment_bounds_attempts(
    kserver: KacheryProtocolServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KACHERY_NETWORK_RETRY_SECONDS", "0")
    kserver.inject("findFile", Fault("status", 503), times=3)
    store = Store(tmp_path / "s")
    with pytest.raises(ZoneUnavailableError, match="HTTP 503"):
        store.load_bytes("kachery:default:sha1:" + "5" * 40)
    assert len(kserver.requests_to("/api/findFile")) == 1
    monkeypatch.setenv("KACHERY_NETWORK_RETRY_SECONDS", "soon")
    with pytest.raises(ValueError, match="KACHERY_NETWORK_RETRY_SECONDS"):
        store.load_bytes("kachery:default:sha1:" + "5" * 40)


def test_cli_loads_kachery_uris(
    kserver: KacheryProtocolServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from kachery_flows.cli import EXIT_CODES, main

    sha1 = kserver.add_object("default", b"cli bytes")
    assert main(["cat", f"kachery:default:sha1:{sha1}:c.txt"]) == 0
    assert capsys.readouterr().out == "cli bytes"
    assert main(["cat", f"kachery:scratch:sha1:{sha1}"]) == 0  # now local
    assert main(["cat", "kachery:scratch:sha1:" + "8" * 40]) == EXIT_CODES["not_found"]
    assert main(["cat", "kachery:nosuchzone:sha1:" + "8" * 40]) == EXIT_CODES["zone"]
    other = kserver.add_object("default", b"will be mangled")
    kserver.inject("download", Fault("corrupt"), times=2)  # the store downloads twice
    assert main(["cat", f"kachery:default:sha1:{other}"]) == EXIT_CODES["corrupt"]
    assert "discarded" in capsys.readouterr().err
