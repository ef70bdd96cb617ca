"""Prefect test setup: one Prefect API server per test session, isolated results per test.

Prefect reads its settings from the environment when it is first imported; the root
``tests/conftest.py`` sets it (``PREFECT_HOME`` in a temp dir, analytics and API logging
off) before any test module imports Prefect.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """A Prefect API server (``prefect_test_harness``) shared by the session; its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        assert url
        yield url


@pytest.fixture
def results_dir(prefect_api_url: str, tmp_path: Path) -> Iterator[Path]:
    """This test's Prefect result storage directory (also the default for its flows);
    flow heartbeats are off (each costs ~1 s on flow exit)."""
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    path = tmp_path / "prefect-results"
    path.mkdir()
    port = urlsplit(prefect_api_url).port
    with warnings.catch_warnings():
        # Prefect 3.9 (results._read_server_default_result_storage_block_id and its async
        # twin) opens an API client on every flow run without result_storage and never
        # closes it; its socket to the test server is left for the garbage collector.
        warnings.filterwarnings(
            "ignore",
            message=rf"unclosed <socket\.socket .*raddr=\('127\.0\.0\.1', {port}\)>",
            category=ResourceWarning,
        )
        with temporary_settings(
            {PREFECT_RESULTS_LOCAL_STORAGE_PATH: path, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ):
            yield path
        gc.collect()
