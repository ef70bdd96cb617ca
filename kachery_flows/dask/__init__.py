"""Dask integration: workers share intermediate arrays by URI, whole dask arrays are
checkpointed in the store, and cached tasks survive cluster restarts.

* :func:`to_kachery` / :func:`from_kachery`: store every chunk of a dask array (on the
  workers, in parallel) plus a JSON manifest whose URI names the whole array; open it
  again lazily, memory-mapping each chunk on the worker that reads it.
* :func:`load_refs` / :func:`load_ref`: tasks return :class:`~kachery_flows.Ref`\\ s
  (e.g. ``@kachery_cached(return_ref=True)``) and their consumers load the data on their
  own worker, so only URIs go through the scheduler.
* :class:`KacheryPlugin`: configures the store root and zone on every worker.

Importing this module imports ``dask`` and ``distributed`` (the ``dask`` extra);
``import kachery_flows`` does not.
"""

from __future__ import annotations

from .._extras import raise_missing_extra

try:
    from ._arrays import DEFAULT_LABEL, from_kachery, to_kachery
    from ._manifest import MANIFEST_SCHEMA, ArrayManifest, read_manifest
    from ._plugin import WORKER_ROOT, KacheryPlugin
    from ._refs import load_ref, load_refs
except ModuleNotFoundError as exc:
    raise_missing_extra("dask", ("dask", "distributed"), exc)

__all__ = [
    "DEFAULT_LABEL",
    "MANIFEST_SCHEMA",
    "WORKER_ROOT",
    "ArrayManifest",
    "KacheryPlugin",
    "from_kachery",
    "load_ref",
    "load_refs",
    "read_manifest",
    "to_kachery",
]
