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
# The ephemeral server gets two minutes to start (Prefect's default is 20 s), since a loaded
# 2-core machine starting several servers at once (examples, process tests) can miss 20 s.
_PREFECT_HOME = tempfile.mkdtemp(prefix="kachery-flows-prefect-home-")
os.environ.update(
    PREFECT_HOME=_PREFECT_HOME,
    PREFECT_PROFILES_PATH=os.path.join(_PREFECT_HOME, "profiles.toml"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_TO_API_ENABLED="false",
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)


# Hypothesis takes any change to the global `random` state while it draws an example for a
# strategy that uses `random`, and fails the test as flaky. Our strategies never do, but the
# session's Prefect server and Dask scheduler threads in this process draw from it
# meanwhile (seen once in tests/reliability's pickle fuzz). A mark, unlike pyproject's
# filterwarnings, takes precedence over the `-W error` of the test command.
_HYPOTHESIS_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every Hypothesis test with :data:`_HYPOTHESIS_RANDOM`."""
    from hypothesis import is_hypothesis_test

    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(_HYPOTHESIS_RANDOM)


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
