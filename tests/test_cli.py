from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kachery_flows import Store
from kachery_flows.cli import EXIT_CODES, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_store_load_cat_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "data.txt"
    src.write_text("test-content\n")
    code, out, _ = run(capsys, "store", str(src))
    assert code == 0
    uri = out.strip()
    assert uri == "sha1://b971c6ef19b1d70ae8f0feb989b106c319b36230?label=data.txt"

    code, out, _ = run(capsys, "store", str(src), "--label", "x y.txt", "--json")
    assert json.loads(out)["uri"].endswith("?label=x%20y.txt")

    code, out, _ = run(capsys, "load", uri)
    assert code == 0 and Path(out.strip()).read_text() == "test-content\n"

    dest = tmp_path / "copy.txt"
    code, out, _ = run(capsys, "load", uri, "-o", str(dest))
    assert code == 0 and dest.read_text() == "test-content\n"

    code, out, _ = run(capsys, "info", uri, "--json")
    info = json.loads(out)
    assert info["size"] == 13 and info["local"] is True

    code, out, _ = run(capsys, "ls-cache", "--json")
    assert [row["sha1"] for row in json.loads(out)] == [uri[7:47]]


def test_cat_writes_raw_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    src = tmp_path / "bin"
    src.write_bytes(data)
    env = dict(os.environ)
    stored = subprocess.run(
        [sys.executable, "-m", "kachery_flows", "store", str(src)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    catted = subprocess.run(
        [sys.executable, "-m", "kachery_flows", "cat", stored], capture_output=True, env=env
    )
    assert catted.returncode == 0 and catted.stdout == data


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("load", "sha1://" + "0" * 40), EXIT_CODES["not_found"]),
        (("load", "sha1://../../etc/passwd"), EXIT_CODES["invalid_uri"]),
        (("cat", "md5://abc"), EXIT_CODES["invalid_uri"]),
        (("info", "sha1://" + "0" * 40), EXIT_CODES["not_found"]),
        (("store", "/definitely/not/here"), EXIT_CODES["error"]),
    ],
)
def test_error_exit_codes(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: int
) -> None:
    got, out, err = run(capsys, *args)
    assert got == code
    assert err.startswith("kachery-flows: error:") and out == ""


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_verify_exit_code_and_quarantine(capsys: pytest.CaptureFixture[str]) -> None:
    store = Store()
    ref = store.put_text("good")
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "OK" in out
    store.object_path(ref).write_text("bad!")
    code, out, _ = run(capsys, "verify", "--json")
    assert code == EXIT_CODES["corrupt"] and json.loads(out)["corrupt"] == [ref.sha1]
    code, out, _ = run(capsys, "verify", "--quarantine")
    assert code == EXIT_CODES["corrupt"] and "quarantined" in out
    code, _, _ = run(capsys, "verify")
    assert code == 0
    store.put_text("fine")
    code, _, err = run(capsys, "verify", "--progress")
    assert code == 0 and "verifying" in err and "4 B" in err  # the 4 bytes re-hashed


def test_root_option_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "other"
    code, out, _ = run(capsys, "--root", str(root), "config", "--json")
    assert code == 0 and json.loads(out)["root"] == str(root)


def test_demo_runs_and_prints_uris(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--root", str(tmp_path / "demo"), "demo")
    assert code == 0
    assert "sha1://d9e989f651cdd269d7f9bb8a215d024d8d283688?label=example.txt" in out
    assert "sha1://bb55205a2482c6db2ace544fc7d8397551110701?label=example.npy" in out
    assert "(computed)" in out and "(cache hit)" in out
    assert Store(tmp_path / "demo").verify().checked == 7  # 5 objects, a result, its record
    code, out, _ = run(capsys, "--root", str(tmp_path / "demo"), "demo")
    assert code == 0 and "(computed)" not in out and "computed by an earlier run" in out


def test_progress_meter_for_forced_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 5000)
    code, _, err = run(capsys, "store", str(src), "--progress")
    assert code == 0 and "100.0%" in err
