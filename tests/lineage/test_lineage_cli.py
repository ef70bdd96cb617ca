"""``kachery-flows lineage``: the tree, ``--json``, ``--depth``, errors, and escaping of
whatever a zone's writers put in records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Pipeline

import kachery_flows as kf
from kachery_flows import Store
from kachery_flows._lineage_index import index_name
from kachery_flows.cli import EXIT_CODES, main

pytestmark = pytest.mark.integration


def on_machine_b(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, zone: Path) -> None:
    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "store-b"))
    monkeypatch.setenv("KACHERY_ZONE", f"file://{zone}")


def test_tree_json_and_depth(
    pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = pipeline
    on_machine_b(monkeypatch, tmp_path, p.zone)
    assert main(["lineage", f"sha1://{p.summary}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"sha1://{p.summary}  pipeline_funcs.summarize_fn [prefect]")
    text = "\n".join(lines)
    for expected in (
        f"filtered <- sha1://{p.filtered}  pipeline_funcs.smooth [memo]",
        f"raw <- sha1://{p.raw}  kachery_flows.dask.to_kachery [dask]",
        f"array <- sha1://{p.base}  kachery_flows.dask.to_kachery [dask]",
        "in width: int = 5",
        f"raw <- sha1://{p.raw}  (shown above)",
    ):
        assert expected in text
    assert "gap" not in text

    assert main(["lineage", f"sha1://{p.summary}", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(kf.lineage(f"sha1://{p.summary}").to_dict()))
    assert main(["lineage", p.key, "--json", "--depth", "0"]) == 0
    shallow = json.loads(capsys.readouterr().out)
    assert [n["sha1"] for n in shallow["nodes"]] == [p.filtered]
    assert shallow["nodes"][0]["truncated"] and not shallow["complete"]


def test_gaps_are_reported_and_bad_input_is_a_usage_error(
    pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = pipeline
    on_machine_b(monkeypatch, tmp_path, p.zone)
    (p.zone / "refs" / index_name(p.raw)).write_text("garbage")
    assert main(["lineage", f"sha1://{p.summary}"]) == 0
    out = capsys.readouterr().out
    assert f"sha1://{p.raw}  !! DAMAGED record: the index entry" in out
    assert out.rstrip().endswith("1 gap(s): the records above marked !! could not be read")
    assert main(["lineage", "sha1://xyz"]) == EXIT_CODES["invalid_uri"]


def test_control_characters_from_records_are_escaped(tmp_path: Path) -> None:
    """A colleague's record (in the zone) cannot drive our terminal."""
    zone = tmp_path / "zone"
    evil = Store(tmp_path / "evil", zone=f"file://{zone}", fsync=False)
    target = evil.put_text("made by someone else")
    record = {
        "schema": "kachery-flows-record-1",
        "function": "steal\x1b]52;c;aGk=\x07\x1b[2J",
        "host": "h\x9b31m",
        "code": "c\r",
        "version": None,
        "key": "k",
        "inputs": {"x\x1b[1A": {"type": "str", "token": "t", "value": "v\x1b[0m"}},
        "result": {"sha1": target.sha1, "uri": target.uri},
        "duration": 1.0,
        "created": "2026-01-01T00:00:00+00:00",
        "producer": {"tool": "memo\x1b"},
    }
    forged = evil.put_json(record)
    evil.zone.set_ref(index_name(target.sha1), f"kfl1 {forged.sha1}")  # type: ignore[union-attr]
    env = dict(os.environ, KACHERY_CLOUD_DIR=str(tmp_path / "me"), KACHERY_ZONE=f"file://{zone}")
    proc = subprocess.run(
        [sys.executable, "-m", "kachery_flows", "lineage", target.uri],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not any(b < 0x20 and b != 0x0A for b in out), out
    assert "\x9b" not in out.decode("utf-8")
    text = out.decode("utf-8")
    assert "steal\\x1b]52;c;aGk=\\x07\\x1b[2J" in text and "h\\x9b31m" in text
    assert "in x\\x1b[1A: str = 'v\\x1b[0m'" in text
