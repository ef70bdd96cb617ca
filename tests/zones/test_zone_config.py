"""KACHERY_ZONE as a URL or a name in <root>/zones.json; Store(zone=spec); config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import kachery_flows as kf
from kachery_flows import Store, ZoneError
from kachery_flows._retry import RetryPolicy
from kachery_flows.cli import main
from kachery_flows.config import load_settings
from kachery_flows.zones import FsspecZone, HttpZone, LocalZone, load_zones_file, open_zone


@pytest.fixture
def root() -> Path:
    path = Path(os.environ["KACHERY_CLOUD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_zones(root: Path, zones: object) -> Path:
    path = root / "zones.json"
    path.write_text(json.dumps(zones))
    return path


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("file:///srv/lab%20zone", "/srv/lab zone"),
        ("file://localhost/srv/z", "/srv/z"),
        ("/abs/zone", "/abs/zone"),
    ],
)
def test_local_urls(spec: str, path: str) -> None:
    zone = open_zone(spec)
    assert isinstance(zone, LocalZone) and zone.root == Path(path)


def test_home_path_and_multi_user_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_CLOUD_MULTI_USER", "1")
    zone = open_zone("~/lab")
    assert isinstance(zone, LocalZone)
    assert zone.root == Path.home() / "lab" and zone.group_shared


def test_http_and_fsspec_urls() -> None:
    assert isinstance(open_zone("https://mirror.example/kachery"), HttpZone)
    zone = open_zone("memory://bucket/prefix")
    assert isinstance(zone, FsspecZone) and zone.root == "/bucket/prefix"
    assert zone.retry.total_seconds == load_settings().retry_seconds == 5.0


@pytest.mark.parametrize(
    "spec",
    [
        "file://otherhost/x",
        "file:///x?y=1",
        "not a zone",
        "ftp//x",
        "nosuchproto://b",
        "s3://",
        "s3:///",
    ],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ZoneError):
        open_zone(spec)


def test_named_zones(root: Path, tmp_path: Path) -> None:
    write_zones(
        root,
        {
            "lab": {"url": f"file://{tmp_path}/lab", "group_shared": True, "fsync": False},
            "mirror": {
                "url": "https://mirror.example/k",
                "headers": {"X-Token": "t"},
                "timeout": 3,
                "allowed_redirect_hosts": ["cdn.example"],
                "retry": {"max_attempts": 2, "initial_delay": 0.5},
            },
            "bucket": {"url": "memory://b/p", "read_only": True},
        },
    )
    lab = open_zone("lab")
    assert isinstance(lab, LocalZone)
    assert lab.root == tmp_path / "lab" and lab.group_shared and not lab.fsync
    mirror = open_zone("mirror")
    assert isinstance(mirror, HttpZone)
    assert mirror.headers == {"X-Token": "t"} and mirror.timeout == (3.0, 3.0)
    assert mirror.allowed_redirect_hosts == {"cdn.example"}
    assert mirror.retry == RetryPolicy(total_seconds=5.0, max_attempts=2, initial_delay=0.5)
    bucket = open_zone("bucket")
    assert isinstance(bucket, FsspecZone) and not bucket.writable


def test_store_accepts_a_spec_and_uploads(root: Path, tmp_path: Path) -> None:
    write_zones(root, {"lab": {"url": str(tmp_path / "lab")}})
    store = Store(tmp_path / "cache", zone="lab", fsync=False)
    assert isinstance(store.zone, LocalZone)
    ref = store.put_text("shared through a named zone")
    assert store.zone.has(ref.sha1)


def test_default_store_follows_kachery_zone(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KACHERY_ZONE", f"file://{tmp_path}/shared")
    uri = kf.store_text("to the zone")
    assert LocalZone(tmp_path / "shared").has(uri[7:47])
    local_only = kf.store_text_local("not uploaded")
    assert not LocalZone(tmp_path / "shared").has(local_only[7:47])
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "elsewhere"))
    assert kf.load_text(uri) == "to the zone"


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ({"lab": {"url": "/x", "colour": "red"}}, "unknown key"),
        ({"lab": {"url": "/x", "headers": {}}}, "unknown key"),
        ({"lab": {}}, "'url'"),
        ({"lab": {"url": "https://x", "read_only": False}}, "always read-only"),
        ({"lab": {"url": "/x", "retry": {"max_attempts": 0}}}, "retry"),
        ({"lab": {"url": "/x", "retry": {"forever": True}}}, "retry"),
        ({"../lab": {"url": "/x"}}, "entry"),
        (["lab"], "JSON object"),
    ],
)
def test_bad_zone_files(root: Path, zones: object, message: str) -> None:
    write_zones(root, zones)
    with pytest.raises(ZoneError, match=message):
        open_zone("lab")


def test_unknown_name_lists_the_configured_zones(root: Path) -> None:
    path = write_zones(root, {"lab": {"url": "/x"}, "s3": {"url": "s3://b"}})
    with pytest.raises(ZoneError, match=r"'aind'.*configured zones: lab, s3") as info:
        open_zone("aind")
    assert str(path) in str(info.value)
    assert "KACHERY_ZONE=kachery:aind" in str(info.value)  # kachery 2's spelling, fixed


def test_kachery_network_specs_are_opened_as_on_main() -> None:
    from kachery_flows.zones.kachery_network import KacheryNetworkZone

    zone = open_zone("kachery:default")
    assert isinstance(zone, KacheryNetworkZone) and zone.zone_name == "default"


def test_unreadable_json_is_a_zone_error(root: Path) -> None:
    (root / "zones.json").write_text("{not json")
    with pytest.raises(ZoneError, match="cannot read zone config"):
        open_zone("lab")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_zone_file_owned_by_someone_else_is_refused(root: Path) -> None:
    path = write_zones(root, {"lab": {"url": "/x"}})
    os.chown(path, 4242, -1)
    with pytest.raises(ZoneError, match="owned by uid 4242"):
        load_zones_file(path)


def test_missing_zone_file_is_empty(tmp_path: Path) -> None:
    assert load_zones_file(tmp_path / "zones.json") == {}


def test_retry_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_FLOWS_RETRY_SECONDS", "2.5")
    assert RetryPolicy.from_settings().total_seconds == 2.5
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv("KACHERY_FLOWS_RETRY_SECONDS", bad)
        with pytest.raises(ValueError, match="KACHERY_FLOWS_RETRY_SECONDS"):
            load_settings()


def test_config_command_shows_the_zone(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_zones(root, {"lab": {"url": str(tmp_path / "lab"), "read_only": True}})
    monkeypatch.setenv("KACHERY_ZONE", "lab")
    assert main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["KACHERY_ZONE"] == "lab"
    assert shown["zone"] == f"file://{tmp_path}/lab"
    assert shown["zone_type"] == "LocalZone" and shown["zone_writable"] is False
    assert shown["zones_file"] == str(root / "zones.json")
