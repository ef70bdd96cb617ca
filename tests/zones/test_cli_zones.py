"""kachery-flows push / pull / ls-zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kachery_flows import Store
from kachery_flows.cli import EXIT_CODES, main
from kachery_flows.testing import MotoS3Server
from kachery_flows.zones import LocalZone


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_push_pull_ls_through_a_shared_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone_url = f"file://{tmp_path}/lab"
    mine = Store(fsync=False)
    a = mine.store_text("first", local=True)
    b = mine.store_json({"second": 2}, local=True)

    code, out, err = run(capsys, "push", a, b, "--zone", zone_url, "--progress")
    assert code == 0, err
    assert out.split() == [a, b]
    assert "100.0%" in err  # --progress shows a meter even for small objects
    zone = LocalZone(tmp_path / "lab")
    assert zone.has(a[7:47]) and zone.has(b[7:47])

    code, out, _ = run(capsys, "ls-zone", "--zone", zone_url, "--json")
    assert code == 0
    assert {row["uri"] for row in json.loads(out)} == {a, b}

    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "colleague"))
    monkeypatch.setenv("KACHERY_ZONE", zone_url)
    code, out, _ = run(capsys, "pull", a, b, "--json")
    assert code == 0
    rows = json.loads(out)
    assert Path(rows[0]["path"]).read_text() == "first"
    assert Path(rows[1]["path"]).is_relative_to(tmp_path / "colleague")

    code, out, _ = run(capsys, "ls-zone")
    assert sorted(out.split()) == sorted([a, b])


def test_pull_missing_and_corrupt_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone_url = f"file://{tmp_path}/lab"
    code, _, err = run(capsys, "pull", "sha1://" + "0" * 40, "--zone", zone_url)
    assert code == EXIT_CODES["not_found"] and "0" * 40 in err

    uri = Store(tmp_path / "w", zone=zone_url, fsync=False).store_text("will rot")
    (tmp_path / "lab" / "sha1" / uri[7:9] / uri[9:11] / uri[11:13] / uri[7:47]).write_text("x")
    code, _, err = run(capsys, "pull", uri, "--zone", zone_url)
    assert code == EXIT_CODES["corrupt"] and "discarded" in err


def test_push_replace_repairs_a_zone_copy_that_is_corrupt_but_of_the_right_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone_url = f"file://{tmp_path}/lab"
    writer = Store(tmp_path / "w", zone=zone_url, fsync=False)
    uri = writer.store_text("good bytes")
    damaged = tmp_path / "lab" / "sha1" / uri[7:9] / uri[9:11] / uri[11:13] / uri[7:47]
    damaged.chmod(0o644)
    damaged.write_text("good bytez")
    reader = Store(tmp_path / "r", zone=zone_url, fsync=False)

    code, _, err = run(capsys, "--root", str(tmp_path / "r"), "pull", uri, "--zone", zone_url)
    assert code == EXIT_CODES["corrupt"] and f"push --replace {uri}" in err

    monkeypatch.setenv("KACHERY_CLOUD_DIR", str(tmp_path / "w"))
    code, _, err = run(capsys, "push", "--replace", uri, "--zone", zone_url)
    assert code == 0, err
    assert reader.load_text(uri) == "good bytes"

    # a directory zone re-hashes a same-size copy on a plain push too, and replaces it
    damaged.write_text("good bytez")
    code, _, err = run(capsys, "push", uri, "--zone", zone_url)
    assert code == 0, err
    assert damaged.read_text() == "good bytes"


def test_push_replace_refuses_a_corrupt_local_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone_url = f"file://{tmp_path}/lab"
    writer = Store(tmp_path / "w", zone=zone_url, fsync=False)
    uri = writer.store_text("good bytes")
    local = writer.object_path(uri)
    local.chmod(0o644)
    local.write_text("good bytez")
    code, _, err = run(
        capsys, "--root", str(tmp_path / "w"), "push", "--replace", uri, "--zone", zone_url
    )
    assert code == EXIT_CODES["corrupt"] and "corrupt" in err
    assert Store(tmp_path / "r", zone=zone_url).load_text(uri) == "good bytes"


def test_push_needs_a_writable_zone_and_a_local_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "push", "sha1://" + "1" * 40)
    assert code == EXIT_CODES["zone"] and "KACHERY_ZONE" in err
    code, _, err = run(capsys, "push", "sha1://" + "1" * 40, "--zone", "https://mirror.example")
    assert code == EXIT_CODES["zone"] and "read-only" in err
    code, _, err = run(capsys, "push", "sha1://" + "1" * 40, "--zone", str(tmp_path / "z"))
    assert code == EXIT_CODES["not_found"]
    code, _, err = run(capsys, "ls-zone", "--zone", "https://mirror.example")
    assert code == EXIT_CODES["zone"] and "cannot list" in err


def test_push_and_pull_against_s3_in_a_subprocess(
    moto_server: MotoS3Server, s3_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "KACHERY_ZONE": f"s3://{s3_bucket}/cli",
    }
    cli = [sys.executable, "-m", "kachery_flows"]
    stored = subprocess.run(
        [*cli, "store", str(src), "--local"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    pushed = subprocess.run(
        [*cli, "push", stored, "--progress"], capture_output=True, text=True, env=env
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "pushing" in pushed.stderr
    env["KACHERY_CLOUD_DIR"] = str(tmp_path / "other")
    pulled = subprocess.run(
        [*cli, "pull", stored, "--progress"], capture_output=True, text=True, env=env
    )
    assert pulled.returncode == 0, pulled.stderr
    assert Path(pulled.stdout.strip()).read_bytes() == src.read_bytes()
    listed = subprocess.run(
        [*cli, "ls-zone"], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert listed == [stored.split("?")[0]]
