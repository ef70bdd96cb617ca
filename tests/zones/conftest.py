"""Fixtures for zone tests: real moto S3 and HTTP servers on 127.0.0.1, short retries."""

from __future__ import annotations

import pytest

from kachery_flows.testing.fixtures import aws_env as aws_env
from kachery_flows.testing.fixtures import fast_retry as fast_retry
from kachery_flows.testing.fixtures import http_directory_server as http_directory_server
from kachery_flows.testing.fixtures import moto_server as moto_server
from kachery_flows.testing.fixtures import s3_bucket as s3_bucket


@pytest.fixture(autouse=True)
def _short_retry_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KACHERY_FLOWS_RETRY_SECONDS", "5")
