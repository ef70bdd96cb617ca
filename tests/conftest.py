"""Shared fixtures: every test gets its own store root and no zone from the environment;
the session gets its own PREFECT_HOME."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kachery_flows import Store

# Prefect reads its settings when it is first imported, by whichever test that is: every
# test session gets its own PREFECT_HOME (never ~/.prefect), analytics and API logging off.
_PREFECT_HOME = tempfile.mkdtemp(prefix="kachery-flows-prefect-home-")
os.environ.update(
    PREFECT_HOME=_PREFECT_HOME,
    PREFECT_PROFILES_PATH=os.path.join(_PREFECT_HOME, "profiles.toml"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_TO_API_ENABLED="false",
)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)


@pytest.fixture(scope="session", autouse=True)
def _prefect_home() -> Iterator[None]:
    """Removes the session's ``PREFECT_HOME`` when the session ends."""
    yield
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


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
