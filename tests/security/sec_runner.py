"""Run one attack in this (child) process: ``sec_runner.py <module.function> <dir> <json>``.

Calls ``sec_<module>.attack_<function>(Path(dir), **params)`` and prints its result as one
JSON line; peak memory (``maxrss_mb``) is added to every result.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path


def main() -> None:
    name, work, params = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    module, function = name.split(".", 1)
    attack = getattr(importlib.import_module(f"sec_{module}"), f"attack_{function}")
    result = attack(work, **params)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
