"""A worker plugin that points every Dask worker at the same kachery store."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..config import ENV_VARIABLES, default_root, load_settings, parse_size
from ..store import get_default_store

__all__ = ["WORKER_ROOT", "KacheryPlugin"]

_INHERITED = tuple(name for name in ENV_VARIABLES if name not in ("HOME", "KACHERY_CLOUD_DIR"))

#: ``root=WORKER_ROOT``: each worker keeps its own default root (its ``KACHERY_CLOUD_DIR``,
#: else ``~/.kachery-cloud``); only the zone and options are set.
WORKER_ROOT = "{default}"


def _absolute_root(root: str | os.PathLike[str]) -> str:
    text = os.fspath(root)
    if text.startswith(("~", "{")) or os.path.isabs(text):
        return text  # "~" and templates are expanded by each worker
    return os.path.abspath(text)


def _worker_root(template: str) -> str:
    """A root template expanded on this worker: ``{host}`` is the host name, ``{default}``
    the worker's own default root (before the plugin changed it)."""
    if "{" not in template:
        return template
    try:
        return template.format(host=socket.gethostname(), default=default_root())
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"root template {template!r}: only {{host}} and {{default}} can be used ({exc})"
        ) from None


class KacheryPlugin(WorkerPlugin):
    """Configure the default kachery store of every worker, including workers that join
    the cluster later::

        client.register_plugin(KacheryPlugin())                      # same store as here
        client.register_plugin(KacheryPlugin("/lab/kachery", zone="s3://lab-bucket/kachery"))
        client.register_plugin(KacheryPlugin(                        # one root per machine
            "/scratch/{host}/kachery", zone="s3://lab-bucket/kachery", max_size="80%"))

    On each worker the plugin sets the environment variables that
    :func:`~kachery_flows.get_default_store` reads (``KACHERY_CLOUD_DIR``,
    ``KACHERY_ZONE``, ``KACHERY_FLOWS_FSYNC``, ``KACHERY_CLOUD_MULTI_USER``,
    ``KACHERY_FLOWS_RETRY_SECONDS``), checks that they make a store (so a bad zone name
    fails at registration), and restores the previous values when it is removed. Anything
    not given is taken from *this* process's settings, so ``KacheryPlugin()`` makes the
    workers use the client's store and zone. Registering another ``KacheryPlugin``
    replaces the previous one (they share the name ``"kachery-flows"``).

    Workers run in their own processes, usually; with ``processes=False`` they share the
    client's process, and so its environment, which the plugin then changes too.

    Parameters
    ----------
    root:
        Local store root of the workers; default: this process's root (made absolute).
        A relative path is made absolute here; ``~`` is expanded by each worker. A
        template is expanded by each worker: ``{host}`` becomes its host name, and
        ``{default}`` (:data:`WORKER_ROOT`) its own default root, so each machine keeps
        its own local store and only the zone is shared.
    zone:
        Zone spec as in ``KACHERY_ZONE`` (a name from ``zones.json`` or a ``file://``,
        ``s3://``, ``https://`` or ``kachery:`` spec); default: this process's zone;
        ``""`` for no zone.
    fsync, multi_user, retry_seconds:
        ``KACHERY_FLOWS_FSYNC``, ``KACHERY_CLOUD_MULTI_USER`` and
        ``KACHERY_FLOWS_RETRY_SECONDS`` for the workers; default: this process's.
    max_size:
        ``KACHERY_FLOWS_MAX_SIZE`` for the workers: the size bound of each worker's local
        store as a cache of the zone (``"200G"``, ``"80%"`` of the worker's disk, bytes);
        default: this process's; ``""`` for none.
    env:
        More environment variables to set on the workers, e.g. credentials the zone needs
        (``AWS_ACCESS_KEY_ID``, ``KACHERY_API_KEY``). Nothing secret is copied unless
        given here: the plugin is pickled and kept by the scheduler.
    """

    name = "kachery-flows"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        zone: str | None = None,
        *,
        fsync: bool | None = None,
        multi_user: bool | None = None,
        retry_seconds: float | None = None,
        max_size: int | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        settings = load_settings()
        environ: dict[str, str | None] = {name: os.environ.get(name) for name in _INHERITED}
        environ["KACHERY_CLOUD_DIR"] = _absolute_root(root if root is not None else settings.root)
        _worker_root(environ["KACHERY_CLOUD_DIR"] or "")  # a bad template fails here
        if zone is not None:
            if not isinstance(zone, str):
                raise TypeError(
                    f"zone must be a spec string (as in KACHERY_ZONE), not {type(zone).__name__}; "
                    "give Zone objects to a Store and pass store= instead"
                )
            environ["KACHERY_ZONE"] = zone or None
        if fsync is not None:
            environ["KACHERY_FLOWS_FSYNC"] = "1" if fsync else "0"
        if multi_user is not None:
            environ["KACHERY_CLOUD_MULTI_USER"] = "1" if multi_user else "0"
        if retry_seconds is not None:
            environ["KACHERY_FLOWS_RETRY_SECONDS"] = repr(float(retry_seconds))
        if max_size is not None:
            if max_size != "":
                parse_size(max_size, "/")  # a malformed size fails here, not on the workers
            environ["KACHERY_FLOWS_MAX_SIZE"] = str(max_size) or None
        for key, value in (env or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("env must map variable names to string values")
            environ[key] = value
        #: What the plugin sets on each worker (``None``: the variable is removed).
        self.environ = environ
        self._previous: dict[str, str | None] = {}

    def __repr__(self) -> str:
        root, zone = self.environ["KACHERY_CLOUD_DIR"], self.environ.get("KACHERY_ZONE")
        return f"KacheryPlugin(root={root!r}, zone={zone!r})"

    @property
    def root(self) -> Path:
        """The workers' store root (``~`` and templates not yet expanded)."""
        return Path(self.environ["KACHERY_CLOUD_DIR"] or "")

    def setup(self, worker: Any = None) -> None:
        """Set the variables on the worker, then build its default store (raises if the
        settings do not make one; the environment is then left as it was)."""
        self._previous = {name: os.environ.get(name) for name in self.environ}
        environ = dict(self.environ)
        environ["KACHERY_CLOUD_DIR"] = _worker_root(self.environ["KACHERY_CLOUD_DIR"] or "")
        _apply(environ)
        try:
            get_default_store()
        except Exception:
            _apply(self._previous)
            raise

    def teardown(self, worker: Any = None) -> None:
        """Restore the variables the worker had before :meth:`setup`."""
        _apply(self._previous)
        self._previous = {}


def _apply(environ: Mapping[str, str | None]) -> None:
    for name, value in environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
