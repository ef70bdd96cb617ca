from __future__ import annotations

import subprocess
import sys
import types

import kachery_flows
from kachery_flows import errors


def test_all_names_exist_and_are_documented() -> None:
    for name in kachery_flows.__all__:
        obj = getattr(kachery_flows, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
    public = {
        n
        for n in dir(kachery_flows)
        if not n.startswith("_") and not isinstance(getattr(kachery_flows, n), types.ModuleType)
    }
    assert public - {"annotations"} == set(kachery_flows.__all__) - {"__version__"}


def test_every_error_is_importable_from_the_package() -> None:
    for name in errors.__all__:
        assert getattr(kachery_flows, name) is getattr(errors, name)
        assert issubclass(getattr(errors, name), errors.KacheryError)


def test_error_mixins() -> None:
    assert issubclass(errors.InvalidURIError, ValueError)
    assert issubclass(errors.ObjectNotFoundError, FileNotFoundError)
    assert issubclass(errors.UnhashableArgumentError, TypeError)
    assert issubclass(errors.StoreWriteError, OSError)
    assert issubclass(errors.ZonePermissionError, PermissionError)


def _import_with_hidden(module: str, hidden: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.modules[{hidden!r}] = None; import {module}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_missing_extra_names_the_install_that_provides_it() -> None:
    for module, hidden, extra in (
        ("kachery_flows.prefect", "prefect", "prefect"),
        ("kachery_flows.dask", "distributed", "dask"),
    ):
        proc = _import_with_hidden(module, hidden)
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("ImportError: ") and f"kachery-flows[{extra}]" in last, last
        assert repr(hidden) in last


def test_other_import_errors_are_not_blamed_on_the_extra() -> None:
    proc = _import_with_hidden("kachery_flows.dask", "kachery_flows.dask._plugin")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "pip install" not in last
