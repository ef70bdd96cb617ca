"""Every zone in the package passes ZoneTests, against real servers."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from kachery_flows import ZoneUnavailableError
from kachery_flows._retry import RetryPolicy
from kachery_flows.testing import DirectoryHTTPServer, MotoS3Server, ZoneTests
from kachery_flows.zones import FsspecZone, HttpZone, LocalZone, Zone, s3_storage_options


class _DirectoryRaw:
    """Raw access for zones whose bytes live in a local directory."""

    def directory(self, zone: Zone) -> Path:
        raise NotImplementedError

    def write_raw(self, zone: Zone, key: str, data: bytes) -> None:
        path = self.directory(zone) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read_raw(self, zone: Zone, key: str) -> bytes | None:
        path = self.directory(zone) / key
        return path.read_bytes() if path.is_file() else None


class TestLocalZone(_DirectoryRaw, ZoneTests):
    @pytest.fixture
    def zone(self, tmp_path: Path) -> Zone:
        return LocalZone(tmp_path / "zone", fsync=False)

    def directory(self, zone: Zone) -> Path:
        assert isinstance(zone, LocalZone)
        return zone.root


class TestGroupSharedLocalZone(TestLocalZone):
    @pytest.fixture
    def zone(self, tmp_path: Path) -> Zone:
        return LocalZone(tmp_path / "zone", fsync=True, group_shared=True)


class TestReadOnlyLocalZone(TestLocalZone):
    @pytest.fixture
    def zone(self, tmp_path: Path) -> Zone:
        return LocalZone(tmp_path / "zone", fsync=False, read_only=True)


class TestHttpZone(_DirectoryRaw, ZoneTests):
    holds_checks_size = False  # HttpZone.holds is the default: has()

    @pytest.fixture
    def zone(self, http_directory_server: DirectoryHTTPServer, fast_retry: RetryPolicy) -> Zone:
        return HttpZone(f"{http_directory_server.url}/mirror/", retry=fast_retry)

    @pytest.fixture(autouse=True)
    def _served(self, http_directory_server: DirectoryHTTPServer) -> None:
        self.served = http_directory_server.directory / "mirror"

    def directory(self, zone: Zone) -> Path:
        return self.served


class _S3Raw:
    server: MotoS3Server

    def _split(self, zone: Zone, key: str) -> tuple[str, str]:
        assert isinstance(zone, FsspecZone)
        bucket, _, prefix = zone.root.partition("/")
        return bucket, f"{prefix}/{key}" if prefix else key

    def write_raw(self, zone: Zone, key: str, data: bytes) -> None:
        bucket, full = self._split(zone, key)
        self.server.client().put_object(Bucket=bucket, Key=full, Body=data)

    def read_raw(self, zone: Zone, key: str) -> bytes | None:
        bucket, full = self._split(zone, key)
        client = self.server.client()
        try:
            body: Any = client.get_object(Bucket=bucket, Key=full)["Body"]
        except client.exceptions.NoSuchKey:
            return None
        data: bytes = body.read()
        return data


class TestS3Zone(_S3Raw, ZoneTests):
    prefix = "lab/zone"

    @pytest.fixture
    def zone(self, moto_server: MotoS3Server, s3_bucket: str, fast_retry: RetryPolicy) -> Zone:
        self.server = moto_server
        url = f"s3://{s3_bucket}/{self.prefix}" if self.prefix else f"s3://{s3_bucket}"
        return FsspecZone(
            url,
            storage_options=s3_storage_options(endpoint_url=moto_server.endpoint_url),
            retry=fast_retry,
        )


class TestS3ZoneAtBucketRoot(TestS3Zone):
    prefix = ""


class TestReadOnlyS3Zone(TestS3Zone):
    @pytest.fixture
    def zone(self, moto_server: MotoS3Server, s3_bucket: str, fast_retry: RetryPolicy) -> Zone:
        self.server = moto_server
        return FsspecZone(
            f"s3://{s3_bucket}/ro",
            storage_options=s3_storage_options(endpoint_url=moto_server.endpoint_url),
            retry=fast_retry,
            read_only=True,
        )


class TestMemoryFsspecZone(ZoneTests):
    """The generic fsspec path, on fsspec's in-memory file system."""

    @pytest.fixture
    def zone(self, fast_retry: RetryPolicy) -> Zone:
        return FsspecZone(f"memory://kf-{uuid.uuid4().hex}/zone", retry=fast_retry)

    def write_raw(self, zone: Zone, key: str, data: bytes) -> None:
        assert isinstance(zone, FsspecZone)
        zone.fs.pipe_file(f"{zone.root}/{key}", data)

    def read_raw(self, zone: Zone, key: str) -> bytes | None:
        assert isinstance(zone, FsspecZone)
        try:
            data: bytes = zone.fs.cat_file(f"{zone.root}/{key}")
        except FileNotFoundError:
            return None
        return data


def test_non_atomic_file_systems_publish_objects_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec's memory file system shows a file as soon as it is opened for writing: a put
    goes through a staging key, so a failed upload leaves neither a partial object nor the
    staging key behind, and a finished one leaves only the object."""
    zone = FsspecZone(f"memory://kf-{uuid.uuid4().hex}/zone", retry=RetryPolicy(max_attempts=1))
    src = tmp_path / "object"
    src.write_bytes(b"x" * 100_000)
    sha1 = hashlib.sha1(src.read_bytes()).hexdigest()
    real_put = zone.fs.put_file

    def broken_put(lpath: str, rpath: str, **kwargs: Any) -> None:
        with zone.fs.open(rpath, "wb") as f:
            f.write(b"x" * 10)
        raise ConnectionResetError("connection reset mid-upload")

    monkeypatch.setattr(zone.fs, "put_file", broken_put)
    with pytest.raises(ZoneUnavailableError):
        zone.put(src, sha1)
    assert not zone.has(sha1)
    assert zone.fs.find(zone.root) == []
    monkeypatch.setattr(zone.fs, "put_file", real_put)
    zone.put(src, sha1)
    assert [p.rsplit("/", 1)[1] for p in zone.fs.find(zone.root)] == [sha1]
