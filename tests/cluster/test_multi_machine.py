"""Workers on "several machines": separate ``dask worker`` processes, each started with
its own ``KACHERY_CLOUD_DIR`` (its scratch disk), sharing one S3 zone (moto's server on
127.0.0.1). ``KacheryPlugin(root=WORKER_ROOT, zone=...)`` sets only the zone: every worker
keeps its own local store, and everything they share goes through the zone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import cluster_funcs  # noqa: E402

from kachery_flows import Store, get_default_store  # noqa: E402
from kachery_flows.dask import (  # noqa: E402
    WORKER_ROOT,
    KacheryPlugin,
    from_kachery,
    read_manifest,
    to_kachery,
)
from kachery_flows.testing import MotoS3Server  # noqa: E402
from kachery_flows.zones import object_key  # noqa: E402

pytestmark = pytest.mark.integration

_HERE = Path(__file__).parent
_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def zone(s3_bucket: str, moto_server: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared S3 zone; this process (the client) uses it too."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("KACHERY_ZONE", f"s3://{s3_bucket}/kachery")
    return f"s3://{s3_bucket}/kachery"


@pytest.fixture
def machines(
    tmp_path: Path, zone: str, moto_server: MotoS3Server
) -> Iterator[tuple[distributed.Client, dict[str, Path]]]:
    """A scheduler, and two workers ("host-a", "host-b") started as separate processes
    with their own ``KACHERY_CLOUD_DIR``; a client with ``KacheryPlugin(WORKER_ROOT)``."""
    roots = {name: tmp_path / f"scratch-{name}" for name in ("host-a", "host-b")}
    scheduler = distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    procs = []
    try:
        for name, root in roots.items():
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("KACHERY_", "AWS_"))
            }
            env.update(
                _AWS,
                KACHERY_CLOUD_DIR=str(root),
                KACHERY_FLOWS_FSYNC="0",
                AWS_ENDPOINT_URL=moto_server.endpoint_url,
                PYTHONPATH=os.pathsep.join([str(_HERE), env.get("PYTHONPATH", "")]),
            )
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        scheduler.scheduler_address,
                        "--name",
                        name,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                        "--local-directory",
                        str(tmp_path / f"dask-{name}"),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with distributed.Client(scheduler) as client:
            client.wait_for_workers(2, timeout=120)
            client.register_plugin(
                KacheryPlugin(
                    WORKER_ROOT,
                    zone=zone,
                    max_size="64M",
                    env={**_AWS, "AWS_ENDPOINT_URL": moto_server.endpoint_url},
                )
            )
            yield client, roots
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        scheduler.close()


def _in_zone(moto_server: MotoS3Server, zone: str, sha1: str) -> bool:
    bucket, prefix = zone[len("s3://") :].split("/", 1)
    listing = moto_server.client().list_objects_v2(
        Bucket=bucket, Prefix=f"{prefix}/{object_key(sha1)}"
    )
    return int(listing.get("KeyCount", 0)) == 1


def test_each_machine_keeps_its_root_and_shares_through_the_zone(
    machines: tuple[distributed.Client, dict[str, Path]],
    zone: str,
    moto_server: MotoS3Server,
    tmp_path: Path,
) -> None:
    client, roots = machines
    info = client.run(cluster_funcs.store_info)
    by_name = {w["name"]: addr for addr, w in client.scheduler_info()["workers"].items()}
    assert {name: info[by_name[name]]["root"] for name in roots} == {
        name: str(root) for name, root in roots.items()
    }
    assert {i["zone"] for i in info.values()} == {zone}
    assert {i["max_size"] for i in info.values()} == {64 << 20}

    # A cached array computed on host-a, its Ref passed to host-b: fetched from the zone.
    marker = str(tmp_path / "marker")
    ref = client.submit(
        cluster_funcs.make_array, 50_000, 1, marker, workers=["host-a"], pure=False
    ).result()
    expected = float(np.random.default_rng(1).standard_normal(50_000).sum())
    assert client.submit(cluster_funcs.total, ref, workers=["host-b"]).result() == expected
    assert Store(roots["host-a"]).object_path(ref).is_file()
    assert Store(roots["host-b"]).object_path(ref).is_file()
    assert _in_zone(moto_server, zone, ref.sha1)

    # The client's memo lookup hits through the zone's ref map; the body does not run again.
    client_store = get_default_store()
    assert not client_store.object_path(ref).exists()
    assert cluster_funcs.make_array(50_000, 1, marker) == ref
    assert cluster_funcs.total(ref) == expected
    with open(marker) as f:
        assert len(f.read().splitlines()) == 1

    # A dask array checkpointed by the workers, read back on the client from the zone.
    arr = da.random.default_rng(3).standard_normal((400, 300), chunks=(100, 100))
    manifest = to_kachery(arr)
    chunks = client.run(cluster_funcs.store_info)
    written = set(chunks[by_name["host-a"]]["objects"]) | set(chunks[by_name["host-b"]]["objects"])
    back = from_kachery(manifest).compute(scheduler="sync")  # in this process: from S3
    np.testing.assert_array_equal(back, arr.compute())
    chunk_hashes = {r.sha1 for r in read_manifest(manifest).chunk_refs}
    assert len(chunk_hashes) == 12 and chunk_hashes <= written
    assert chunk_hashes <= set(client_store.iter_hashes())
    assert all(_in_zone(moto_server, zone, sha1) for sha1 in chunk_hashes)

    # A per-host root template: each worker expands {host} itself.
    client.register_plugin(KacheryPlugin(str(tmp_path / "{host}" / "kachery"), zone=zone))
    info = client.run(cluster_funcs.store_info)
    assert {i["root"] for i in info.values()} == {
        str(tmp_path / i["host"] / "kachery") for i in info.values()
    }
    with pytest.raises(ValueError, match=r"only \{host\} and \{default\}"):
        KacheryPlugin("/scratch/{user}/kachery")


def test_a_worker_cache_streaming_ten_times_its_bound(
    machines: tuple[distributed.Client, dict[str, Path]],
    zone: str,
    tmp_path: Path,
) -> None:
    client, roots = machines
    bound, size = 200_000, 40_000
    client.register_plugin(KacheryPlugin(WORKER_ROOT, zone=zone, max_size=bound))
    producer = get_default_store()  # the client's store, uploading to the zone
    mine = client.submit(_put_local, os.urandom(size), workers=["host-b"]).result()
    uris = [producer.put_bytes(os.urandom(size)).uri for _ in range(50)]  # 10x the bound
    peak = client.submit(cluster_funcs.stream, uris, workers=["host-b"]).result()
    assert bound - size < peak <= bound + size
    assert Store(roots["host-b"]).object_path(mine).is_file()  # local-only: kept


def _put_local(data: bytes) -> str:
    return get_default_store().put_bytes(data, local=True).uri
