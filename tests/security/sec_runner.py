"""Run one attack in this (child) process: ``sec_runner.py <module.function> <dir> <json>``.

Calls ``sec_<module>.attack_<function>(Path(dir), **params)`` and prints its result as one
JSON line; peak memory (``maxrss_mb``) is added to every result. It is this process's own
high-water mark (``VmHWM``): ``getrusage``'s ``ru_maxrss`` keeps the parent's peak across
``fork``+``exec`` on Linux, so a child of a large pytest process would report the parent's.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    name, work, params = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    module, function = name.split(".", 1)
    attack = getattr(importlib.import_module(f"sec_{module}"), f"attack_{function}")
    result = attack(work, **params)
    result["maxrss_mb"] = _peak_rss_kib() // 1024
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
