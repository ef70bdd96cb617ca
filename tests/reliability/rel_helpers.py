"""Helpers shared by the reliability tests."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kachery_flows import Store

#: Environment variables raise the counts for a longer local run.
PREFIX = "KACHERY_FLOWS_RELIABILITY_"


def count(name: str, default: int) -> int:
    """``$KACHERY_FLOWS_RELIABILITY_<NAME>`` if set, else ``default``."""
    raw = os.environ.get(PREFIX + name, "").strip()
    return int(raw) if raw else default


def npy_bytes(array: np.ndarray) -> bytes:
    """What ``np.save(allow_pickle=False)`` writes for ``array``."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header_length(data: bytes) -> int:
    """Length of the magic string plus header of ``.npy`` bytes (format 1.0 or 2.0)."""
    major = data[6]
    if major == 1:
        return 10 + int.from_bytes(data[8:10], "little")
    return 12 + int.from_bytes(data[8:12], "little")


def flip_bit(path: Path, bit: int) -> None:
    """Flip one bit of a file in place (flipping it again restores the file)."""
    fd = os.open(path, os.O_RDWR)
    try:
        (byte,) = os.pread(fd, 1, bit // 8)
        os.pwrite(fd, bytes([byte ^ (1 << (bit % 8))]), bit // 8)
    finally:
        os.close(fd)


def overwrite(path: Path, data: bytes) -> None:
    """Replace a file's bytes in place (same inode), even if it was made read-only."""
    path.chmod(0o644)
    with open(path, "wb") as f:
        f.write(data)


def truncation_lengths(size: int, header: int) -> dict[str, int]:
    """Every truncation length class of an object of ``size`` bytes whose header is
    ``header`` bytes long: empty, one byte, header only, half, one byte short."""
    return {"0": 0, "1": 1, "header-only": header, "mid": size // 2, "size-1": size - 1}


def staged(store: Store) -> list[Path]:
    """Temp files in the store (a writer's, or litter)."""
    return list(store.iter_temp_files())


class Forker:
    """A running ``rel_forker.py`` (see its docstring), with the current environment plus
    ``env``; its stderr (writers' tracebacks) goes to ``log``."""

    def __init__(self, log: Path, **env: str) -> None:
        here = Path(__file__).parent
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(here), *filter(None, [full_env.get("PYTHONPATH")])]
        )
        full_env.update(env)
        self.log = log
        self._stderr = open(log, "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, str(here / "rel_forker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
        )

    def send(self, **cmd: object) -> None:
        """Send one command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 240.0) -> dict[str, Any]:
        """The next answer (fails with the forker's stderr if none comes in time)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        assert line, f"no answer from the forker; its stderr:\n{self.log.read_text()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Stop the forker."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self._stderr.close()
