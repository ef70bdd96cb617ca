"""The zone registry: scheme -> lazily imported class, entry points, install hints, and
the promise that a zones.json entry can never name code to import."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kachery_flows import ZoneError
from kachery_flows.zones import (
    ENTRY_POINT_GROUP,
    FsspecZone,
    LocalZone,
    ZoneConfigError,
    _registry,
    open_zone,
    register_zone,
    zone_class,
)
from kachery_flows.zones.kachery_network import KacheryNetworkZone

_THIRD_PARTY = '''
from pathlib import Path
from urllib.parse import urlsplit

from kachery_flows.zones import LocalZone, check_options

IMPORTED = True


class PlantZone(LocalZone):
    """A third-party zone: plant://<dir> is a directory zone with a 'label' option."""

    @classmethod
    def from_config(cls, url, options, settings):
        check_options(options, ("label",), "plant")
        zone = cls(Path(urlsplit(url).path), fsync=False)
        zone.label = options.get("label")
        return zone
'''


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the shipped registry; what it registers is forgotten after it."""
    monkeypatch.setattr(_registry, "known_zones", dict(_registry.known_zones))
    monkeypatch.setattr(_registry, "_classes", {})


@pytest.fixture
def root() -> Path:
    path = Path(os.environ["KACHERY_CLOUD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution on sys.path: module ``kf_plant_zone`` and, in ``site/``, its
    dist-info registering scheme ``plant`` in the ``kachery_flows.zones`` group. Also a
    module ``kf_planted_code`` that no entry point names."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "kf_plant_zone.py").write_text(_THIRD_PARTY)
    (site / "kf_planted_code.py").write_text("IMPORTED = True\n")
    info = site / "kf_plant_zone-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kf-plant-zone\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nplant = kf_plant_zone:PlantZone\n"
        "[some.other.group]\nplanted = kf_planted_code:Thing\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("kf_plant_zone", "kf_planted_code"):
        sys.modules.pop(name, None)


def write_zones(root: Path, zones: object) -> None:
    (root / "zones.json").write_text(json.dumps(zones))


def test_shipped_schemes() -> None:
    assert zone_class("file") is LocalZone
    assert zone_class("s3") is FsspecZone
    assert zone_class("kachery") is KacheryNetworkZone
    assert zone_class("memory") is FsspecZone  # any other scheme: fsspec


def test_zone_classes_are_imported_only_when_used() -> None:
    code = textwrap.dedent("""
        import sys
        from kachery_flows.zones import open_zone
        lazy = ("kachery_flows.zones.http", "kachery_flows.zones.fsspec",
                "kachery_flows.zones.kachery_network", "importlib.metadata")
        before = [m for m in lazy if m in sys.modules]
        open_zone("/tmp/some-zone")
        after_local = [m for m in lazy if m in sys.modules]
        open_zone("https://mirror.example/k")
        print(before, after_local, "kachery_flows.zones.http" in sys.modules,
              "kachery_flows.zones.fsspec" in sys.modules)
    """)
    env = {**os.environ, "KACHERY_ZONE": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == ["[]", "[]", "True", "False"]


def test_entry_point_zone_with_its_own_options(installed: Path, root: Path, tmp_path: Path) -> None:
    zone = open_zone(f"plant://{tmp_path}/zone")
    assert type(zone).__name__ == "PlantZone" and zone.root == tmp_path / "zone"
    write_zones(
        root,
        {
            "mine": {"url": f"plant://{tmp_path}/z2", "label": "lab", "trust_pickles": True},
            "typo": {"url": f"plant://{tmp_path}/z3", "lable": "lab"},
        },
    )
    mine = open_zone("mine")
    assert getattr(mine, "label", None) == "lab" and mine.trust_pickles
    with pytest.raises(ZoneConfigError, match=r"zone 'typo' in .*zones.json: unknown key"):
        open_zone("typo")


def test_zones_json_cannot_name_code_to_import(installed: Path, root: Path, tmp_path: Path) -> None:
    """Only a scheme is ever looked up, and only among shipped zones, zones registered in
    this process and entry points of the kachery_flows.zones group: a module that is
    importable, or registered in another group, is never imported for a zones.json URL."""
    write_zones(
        root,
        {
            "by-key": {"url": f"file://{tmp_path}/z", "class": "kf_planted_code:Thing"},
            "by-module": {"url": "kf_planted_code://bucket/x"},
            "other-group": {"url": "planted://bucket/x"},
            "by-path": {"url": "kf_planted_code:Thing"},
        },
    )
    for name in ("by-key", "by-module", "other-group", "by-path"):
        with pytest.raises(ZoneError):
            open_zone(name)
    assert "kf_planted_code" not in sys.modules


def test_install_hint_when_a_zone_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    register_zone("broken", "kf_no_such_module:Zone", hint="pip install kf-broken-zone")
    with pytest.raises(ZoneError, match=r"broken://.*kf_no_such_module.*pip install kf-broken"):
        open_zone("broken://bucket")
    fsspec_registry = importlib.import_module("fsspec.registry")
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the s3 extra were missing
    monkeypatch.delitem(fsspec_registry._registry, "s3", raising=False)
    with pytest.raises(ZoneError, match=r"pip install 'kachery-flows\[s3\]'"):
        open_zone("s3://bucket/prefix")


def test_register_zone(tmp_path: Path) -> None:
    class MyZone(LocalZone):
        @classmethod
        def from_config(cls, url, options, settings):  # type: ignore[no-untyped-def]
            return cls(tmp_path / url.split("://", 1)[1], fsync=False)

    register_zone("mine", MyZone)
    zone = open_zone("mine://z")
    assert isinstance(zone, MyZone) and zone.root == tmp_path / "z"
    register_zone("mine", MyZone)  # the same class again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_zone("s3", MyZone)
    with pytest.raises(ValueError, match="already registered"):
        register_zone("mine", "elsewhere:OtherZone")
    register_zone("mine", "kachery_flows.zones.local:LocalZone", clobber=True)
    assert zone_class("mine") is LocalZone
    register_zone("notazone", "kachery_flows.zones._registry:_Known")
    with pytest.raises(ZoneError, match="not a Zone class"):
        open_zone("notazone://x")


def test_kachery_network_zone_in_zones_json(root: Path) -> None:
    write_zones(
        root,
        {
            "public": {"url": "kachery:default", "trust_pickles": True},
            "retrying": {"url": "kachery:default", "retry": {"max_attempts": 2}},
        },
    )
    zone = open_zone("public")
    assert isinstance(zone, KacheryNetworkZone) and zone.trust_pickles
    with pytest.raises(ZoneConfigError, match=r"unknown key.*for a kachery network zone"):
        open_zone("retrying")
