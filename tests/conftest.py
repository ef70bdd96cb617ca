"""Shared fixtures: every test gets its own store root and no zone from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kachery_flows import Store


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "kachery-cloud"))
    monkeypatch.delenv("KACHERY_ZONE", raising=False)
    monkeypatch.setenv("KACHERY_FLOWS_FSYNC", "0")
    monkeypatch.delenv("KACHERY_CLOUD_MULTI_USER", raising=False)
    # kachery: URIs name a kachery network zone: keep it on a closed loopback port
    monkeypatch.setenv("KACHERY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KACHERY_GATEWAY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KACHERY_NETWORK_RETRY_SECONDS", "0")
    monkeypatch.delenv("KACHERY_API_KEY", raising=False)
    yield


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store over a fresh root."""
    return Store(tmp_path / "store", fsync=False)
