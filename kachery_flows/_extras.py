"""A clear error when an optional integration's extra is not installed."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["raise_missing_extra"]


def raise_missing_extra(
    extra: str, packages: tuple[str, ...], exc: ModuleNotFoundError
) -> NoReturn:
    """Re-raise ``exc``, caught while importing ``kachery_flows.<extra>``: as an
    :class:`ImportError` naming the ``kachery-flows[<extra>]`` install when the missing
    module belongs to one of ``packages`` (the extra's third-party packages), else as is."""
    top = (exc.name or "").partition(".")[0]
    if top not in packages:
        raise exc
    raise ImportError(
        f"kachery_flows.{extra} needs the {top!r} package, which is not installed here: "
        f"pip install 'kachery-flows[{extra}]'"
    ) from exc
