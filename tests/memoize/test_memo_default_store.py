"""The default store is re-resolved cheaply on every call (the memo hit path relies on it)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from kachery_flows import config, get_default_store


def test_fingerprint_covers_every_variable_the_settings_read() -> None:
    source = inspect.getsource(config.load_settings) + inspect.getsource(config.default_root)
    read = set(re.findall(r'"(KACHERY_[A-Z_]+)"', source))
    assert read and read <= set(config.ENV_VARIABLES)
    assert "HOME" in config.ENV_VARIABLES  # Path.home() when KACHERY_CLOUD_DIR is unset


def test_default_store_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_default_store()
    assert get_default_store() is first
    monkeypatch.setenv("KACHERY_FLOWS_FSYNC", "1")
    assert get_default_store().fsync is True
    monkeypatch.setenv("KACHERY_FLOWS_FSYNC", "0")
    assert get_default_store().fsync is False
    monkeypatch.delenv("KACHERY_CLOUD_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_default_store().root == tmp_path / "home" / ".kachery-cloud"
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "elsewhere"))
    assert get_default_store().root == tmp_path / "elsewhere"
