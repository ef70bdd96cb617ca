"""A helper process that forks writers on request, so hundreds of them start in
milliseconds (a fresh interpreter each would cost ~100 ms of a shared CPU).

Run as ``python rel_forker.py``; the store comes from the environment
(``KACHERY_CLOUD_DIR``, ``KACHERY_ZONE``, ``KACHERY_FLOWS_FSYNC``). It reads one JSON
command per line on stdin and answers with JSON lines on stdout:

``{"op": "race", "writers": N, "size": S, "seed": X, "go": PATH, "naive": false}``
    Fork N writers of one object (S random bytes from seed X); each waits until PATH
    exists, then stores it (``naive``: writes the final path directly, in chunks, the
    way a store must not). Answers ``{"sha1": ..., "path": ...}`` once all are forked, then
    ``{"exit_codes": [...]}`` when they are done.

``{"op": "kill", "rounds": R, "min_size": A, "max_size": B, "max_delay": D, "seed": X,
"memo_every": M}``
    R rounds: fork a writer of a fresh object (A..B random bytes; every M-th round a
    memoized call instead, killed after up to 4 D), SIGKILL it after a random 0..D
    seconds, reap it. Answers
    ``{"rounds": [{"kind", "sha1" | "seed", "n", "killed"}, ...]}``.

``{"op": "memo", "calls": [{"root": R, "seeds": [...]}, ...], "n": N, "delay": D,
"marker": M, "go": PATH}``
    Fork one caller per entry of ``calls``: with ``KACHERY_CLOUD_DIR=R`` it waits for PATH,
    then calls ``slow_series(seed, N, f"{M}-{seed}", D)`` for each seed and checks the
    values. Answers ``{"pids": [...]}`` once all are forked, then ``{"exit_codes": [...]}``.

The forker never stores anything itself, so no helper thread exists when it forks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import signal
import sys
import time
import traceback
from typing import Any

import numpy as np
from rel_funcs import memo_series, series, slow_series

from kachery_flows import get_default_store


def _child(work: Any) -> None:
    """Run ``work()`` in a forked child and leave without running the parent's cleanup."""
    code = 0
    try:
        work()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait_for(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.0005)


def _naive_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for start in range(0, len(data), 1 << 20):
            f.write(data[start : start + (1 << 20)])
            f.flush()
            time.sleep(0.001)


def race(cmd: dict[str, Any]) -> None:
    data = np.random.default_rng(cmd["seed"]).bytes(cmd["size"])
    sha1 = hashlib.sha1(data).hexdigest()
    store = get_default_store()
    path = str(store.object_path(f"sha1://{sha1}"))
    pids = []
    for _ in range(cmd["writers"]):
        pid = os.fork()
        if pid == 0:
            _wait_for(cmd["go"])
            if cmd.get("naive"):
                _child(functools.partial(_naive_write, path, data))
            _child(functools.partial(store.put_bytes, data))
        pids.append(pid)
    _answer({"sha1": sha1, "path": path})
    _reap(pids)


def kill(cmd: dict[str, Any]) -> None:
    rng = random.Random(cmd["seed"])
    store = get_default_store()
    rounds = []
    for i in range(cmd["rounds"]):
        delay = rng.uniform(0, cmd["max_delay"])
        size = rng.randint(cmd["min_size"], cmd["max_size"])
        if cmd["memo_every"] and i % cmd["memo_every"] == 0:
            delay *= 4  # a memoized call writes a result, a record and an entry
            seed, n = cmd["seed"] * 100_000 + i, size // 8
            info: dict[str, Any] = {"kind": "memo", "seed": seed, "n": n}
            work: Any = functools.partial(memo_series, seed, n)
        else:
            data = rng.randbytes(size)
            info = {"kind": "put", "sha1": hashlib.sha1(data).hexdigest(), "n": size}
            work = functools.partial(store.put_bytes, data)
        pid = os.fork()
        if pid == 0:
            _child(work)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        info["killed"] = os.WIFSIGNALED(status)
        if not info["killed"]:
            assert os.waitstatus_to_exitcode(status) == 0, f"writer failed in round {i}"
        rounds.append(info)
    _answer({"rounds": rounds})


def _call_all(root: str, seeds: list[int], cmd: dict[str, Any]) -> None:
    os.environ["KACHERY_CLOUD_DIR"] = root
    _wait_for(cmd["go"])
    for seed in seeds:
        value = slow_series(seed, cmd["n"], f"{cmd['marker']}-{seed}", cmd["delay"])
        assert np.array_equal(value, series(seed, cmd["n"])), f"wrong value for seed {seed}"


def memo(cmd: dict[str, Any]) -> None:
    pids = []
    for call in cmd["calls"]:
        pid = os.fork()
        if pid == 0:
            _child(functools.partial(_call_all, call["root"], call["seeds"], cmd))
        pids.append(pid)
    _answer({"pids": pids})
    _reap(pids)


def _reap(pids: list[int]) -> None:
    codes = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    _answer({"exit_codes": codes})


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        {"race": race, "kill": kill, "memo": memo}[cmd["op"]](cmd)


if __name__ == "__main__":
    main()
