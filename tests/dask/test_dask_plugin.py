"""KacheryPlugin: every worker, including one that joins later, uses the configured store
and zone; chunks a worker lacks are fetched from the zone and verified; removing the
plugin restores the workers' environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dask.array as da
import dask_funcs
import distributed
import numpy as np
import pytest

from kachery_flows import CorruptObjectError, Store, ZoneError, get_default_store
from kachery_flows.config import load_settings
from kachery_flows.dask import (
    WORKER_ROOT,
    KacheryPlugin,
    from_kachery,
    read_manifest,
    to_kachery,
)
from kachery_flows.zones import LocalZone

pytestmark = pytest.mark.integration


def _roots(client: distributed.Client) -> set[str]:
    return set(client.run(dask_funcs.default_root).values())


def test_workers_use_the_clients_store(client: distributed.Client) -> None:
    assert _roots(client) == {str(get_default_store().root)}
    envs = client.run(dask_funcs.worker_environment)
    assert all(
        env["KACHERY_FLOWS_FSYNC"] == "0" and env["KACHERY_ZONE"] is None for env in envs.values()
    )


def test_a_worker_that_joins_later_is_configured(
    client: distributed.Client, dask_cluster: distributed.LocalCluster, tmp_path: Path
) -> None:
    root = tmp_path / "late"
    client.register_plugin(KacheryPlugin(root))
    old = set(client.scheduler_info()["workers"])
    dask_cluster.scale(3)
    try:
        client.wait_for_workers(3, timeout=60)
        (new,) = set(client.scheduler_info()["workers"]) - old
        assert client.run(dask_funcs.default_root, workers=[new]) == {new: str(root)}
        ref = client.submit(dask_funcs.produce_ref, 1000, 5, workers=[new]).result()
        assert Store(root).exists(ref) and not get_default_store().exists(ref)
    finally:
        dask_cluster.scale(2)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)


def test_workers_fetch_missing_chunks_from_the_zone_and_verify_them(
    client: distributed.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone_dir = tmp_path / "zone"
    zone_dir.mkdir()
    monkeypatch.setenv("KACHERY_ZONE", zone_dir.as_uri())
    client.register_plugin(KacheryPlugin(tmp_path / "writers"))
    arr = da.random.default_rng(8).standard_normal((60, 10), chunks=(20, 10))
    ref = to_kachery(arr)
    manifest = read_manifest(ref)  # this process: fetched from the zone
    assert all(
        (zone_dir / "sha1" / r.sha1[:2] / r.sha1[2:4] / r.sha1[4:6] / r.sha1).is_file()
        for r in manifest.chunk_refs
    )

    readers = tmp_path / "readers"
    client.register_plugin(KacheryPlugin(readers))  # fresh local stores, same zone
    np.testing.assert_array_equal(from_kachery(ref).compute(), arr.compute())
    assert all(Store(readers).object_path(r).is_file() for r in manifest.chunk_refs)

    damaged = manifest.chunk_refs[1].sha1
    path = zone_dir / "sha1" / damaged[:2] / damaged[2:4] / damaged[4:6] / damaged
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    client.register_plugin(KacheryPlugin(tmp_path / "third"))
    with pytest.raises(CorruptObjectError, match=damaged):
        from_kachery(ref).compute()
    assert not Store(tmp_path / "third").object_path(manifest.chunk_refs[1]).exists()


def test_a_bad_zone_fails_at_registration(client: distributed.Client) -> None:
    with pytest.raises(ZoneError, match="no-such-zone"):
        client.register_plugin(KacheryPlugin(zone="no-such-zone"))
    envs = client.run(dask_funcs.worker_environment)
    assert all(env["KACHERY_ZONE"] is None for env in envs.values())  # not left half-set
    client.register_plugin(KacheryPlugin())  # a good one replaces it
    assert _roots(client) == {str(get_default_store().root)}


def test_removing_the_plugin_restores_the_environment(
    client: distributed.Client, tmp_path: Path
) -> None:
    client.unregister_worker_plugin("kachery-flows")
    original = client.run(dask_funcs.worker_environment)
    client.register_plugin(KacheryPlugin(tmp_path / "elsewhere", zone=(tmp_path / "z").as_uri()))
    changed = client.run(dask_funcs.worker_environment)
    assert {env["KACHERY_CLOUD_DIR"] for env in changed.values()} == {str(tmp_path / "elsewhere")}
    assert {env["KACHERY_ZONE"] for env in changed.values()} == {(tmp_path / "z").as_uri()}
    client.unregister_worker_plugin("kachery-flows")
    assert client.run(dask_funcs.worker_environment) == original


def test_plugin_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KACHERY_ZONE", "lab")
    plugin = KacheryPlugin(
        "relative/store", fsync=True, multi_user=True, retry_seconds=5, env={"AWS_PROFILE": "lab"}
    )
    assert plugin.environ == {
        "KACHERY_CLOUD_DIR": str(tmp_path / "relative" / "store"),
        "KACHERY_ZONE": "lab",
        "KACHERY_FLOWS_FSYNC": "1",
        "KACHERY_CLOUD_MULTI_USER": "1",
        "KACHERY_FLOWS_RETRY_SECONDS": "5.0",
        "KACHERY_FLOWS_TRUST_ZONE_PICKLES": None,
        "KACHERY_FLOWS_MAX_SIZE": None,
        "AWS_PROFILE": "lab",
    }
    assert KacheryPlugin("~/kachery", zone="").environ["KACHERY_CLOUD_DIR"] == "~/kachery"
    assert KacheryPlugin(zone="").environ["KACHERY_ZONE"] is None
    assert KacheryPlugin().root == load_settings().root
    with pytest.raises(TypeError, match="spec string"):
        KacheryPlugin(zone=LocalZone(tmp_path))  # type: ignore[arg-type]
    assert KacheryPlugin(max_size="200G").environ["KACHERY_FLOWS_MAX_SIZE"] == "200G"
    assert KacheryPlugin(max_size=10**6).environ["KACHERY_FLOWS_MAX_SIZE"] == "1000000"
    assert KacheryPlugin(max_size="").environ["KACHERY_FLOWS_MAX_SIZE"] is None
    with pytest.raises(ValueError, match="not a size"):
        KacheryPlugin(max_size="lots")
    assert KacheryPlugin(WORKER_ROOT).environ["KACHERY_CLOUD_DIR"] == "{default}"


def test_worker_root_keeps_each_workers_own_root(
    client: distributed.Client, tmp_path: Path
) -> None:
    client.unregister_worker_plugin("kachery-flows")
    own = client.run(dask_funcs.default_root)  # each worker's own default (nothing written)
    client.register_plugin(
        KacheryPlugin(WORKER_ROOT, zone=(tmp_path / "z").as_uri(), max_size="1M")
    )
    assert client.run(dask_funcs.default_root) == own
    after = client.run(dask_funcs.worker_environment)
    assert {env["KACHERY_ZONE"] for env in after.values()} == {(tmp_path / "z").as_uri()}
