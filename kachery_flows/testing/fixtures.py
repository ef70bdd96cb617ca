"""pytest fixtures for zone tests.

Enable them with ``pytest_plugins = ["kachery_flows.testing.fixtures"]`` in a root
``conftest.py``, or import the fixtures you need into a ``conftest.py``.

- ``moto_server`` (session): a :class:`MotoS3Server` on 127.0.0.1 and a free port.
- ``aws_env``: dummy AWS credentials and region, and no AWS config files, so tests never
  see the developer's real AWS settings.
- ``s3_bucket``: a fresh bucket on ``moto_server``.
- ``http_directory_server``: a :class:`DirectoryHTTPServer` over an empty temp directory.
- ``fast_retry``: a :class:`~kachery_flows.RetryPolicy` with several attempts and
  short sleeps, for zones under fault injection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .._retry import RetryPolicy
from ._servers import DirectoryHTTPServer, MotoS3Server

__all__ = ["aws_env", "fast_retry", "http_directory_server", "moto_server", "s3_bucket"]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3Server]:
    """moto's S3 over HTTP on 127.0.0.1 (free port), shared by the session."""
    server = MotoS3Server().start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and region; the developer's AWS files and endpoint are hidden."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_bucket(moto_server: MotoS3Server, aws_env: None) -> str:
    """A new, empty bucket on the moto server."""
    return moto_server.create_bucket()


@pytest.fixture
def http_directory_server(tmp_path: Path) -> Iterator[DirectoryHTTPServer]:
    """An HTTP server on 127.0.0.1 (free port) serving the empty directory ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    with DirectoryHTTPServer(root) as server:
        yield server


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Retries fast enough for tests, still several attempts."""
    return RetryPolicy(total_seconds=10.0, max_attempts=4, initial_delay=0.02, max_delay=0.1)
