"""The Prefect UI artifact a ``KacherySerializer(artifact=True)`` publishes per result."""

from __future__ import annotations

import logging
import re

from prefect.artifacts import MarkdownArtifact
from prefect.context import FlowRunContext, TaskRunContext
from prefect.transactions import get_transaction

from ..store import Store
from ..uri import Ref

__all__ = ["publish_result_artifact", "result_markdown"]

_LOAD = {
    "npy": ("kf.load_npy(uri)  # memory-mapped: kf.load_npy(uri, mmap_mode='r')", "load_npy"),
    "json": ("kf.load_json(uri)", "load_json"),
    "bytes": ("open(kf.load_file(uri), 'rb').read()", "load_file"),
    "pkl": ("kf.load_pkl(uri, trusted=True)  # only if you trust whoever ran the task", "load_pkl"),
}


def _size_text(size: int | None) -> str:
    if size is None:
        return "not in this store"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size:,} bytes)"
    return f"{size} bytes"


def result_markdown(ref: Ref, codec: str, size: int | None, key: str | None, zone: str) -> str:
    """The artifact's markdown: where the result lives and how to load it anywhere."""
    kf_load, kcl_load = _LOAD.get(codec, _LOAD["bytes"])
    return "\n".join(
        [
            f"### Result `{ref.label or ref.sha1}` in kachery",
            "",
            "| | |",
            "| --- | --- |",
            f"| URI | `{ref.uri}` |",
            f"| size | {_size_text(size)} |",
            f"| codec | {codec} |",
            f"| cache key | `{key or '(none: not cached)'}` |",
            f"| zone | {zone} |",
            "",
            "Load it with kachery-flows (on any machine that shares the zone):",
            "",
            "```python",
            "import kachery_flows as kf",
            f'uri = "{ref.uri}"',
            kf_load,
            "```",
            "",
            "or with kachery-cloud:",
            "",
            "```python",
            "import kachery_cloud as kcl",
            f'kcl.{kcl_load}("{ref.uri}")',
            "```",
            "",
            f"Provenance: `kachery-flows lineage {ref.uri}`",
        ]
    )


def _artifact_key() -> str | None:
    """``kachery-<task name>`` (lowercase letters, digits and dashes, as Prefect requires)."""
    ctx = TaskRunContext.get()
    name = ctx.task.name if ctx is not None else None
    if name is None:
        flow_ctx = FlowRunContext.get()
        name = flow_ctx.flow.name if flow_ctx is not None and flow_ctx.flow else None
    if not name:
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"kachery-{slug}"[:100].rstrip("-") if slug else None


def publish_result_artifact(store: Store, ref: Ref, codec: str) -> None:
    """Publish the markdown artifact of a result on the running task (or flow) run.

    Does nothing outside a run. A failure to publish is logged, never raised: the result
    is persisted either way.
    """
    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return
    path = store.object_path(ref)
    size = path.stat().st_size if path.exists() else None
    transaction = get_transaction()
    key = transaction.key if transaction is not None else None
    zone = store.zone.name if store.zone is not None else "none (local store only)"
    try:
        MarkdownArtifact(
            key=_artifact_key(),
            description=f"kachery result {ref.uri}",
            markdown=result_markdown(ref, codec, size, key, zone),
        ).create(_sync=True)  # type: ignore[call-arg]  # async_dispatch's sync path
    except Exception as exc:  # an optional UI record never fails the task
        logging.getLogger("kachery_flows.prefect").warning(
            "could not publish the Prefect artifact of %s: %s", ref.uri, exc
        )
