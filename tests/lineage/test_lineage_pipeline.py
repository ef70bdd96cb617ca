"""Lineage of a pipeline that process A ran (Dask checkpoints, a memoized call, a Prefect
task), read from machine B: another store that shares only the zone."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Pipeline

import kachery_flows as kf
from kachery_flows import Store
from kachery_flows.lineage import Lineage
from kachery_flows.zones.local import LocalZone

pytestmark = pytest.mark.integration


def store_b(tmp_path: Path, pipeline: Pipeline) -> Store:
    """Machine B: an empty store of its own in front of the pipeline's zone."""
    return Store(tmp_path / "store-b", zone=LocalZone(pipeline.zone, fsync=False), fsync=False)


def edges(graph: Lineage) -> set[tuple[str, str, str]]:
    return {(e.parent, e.child, e.input) for e in graph.edges}


def index_entry(pipeline: Pipeline, sha1: str) -> Path:
    return pipeline.zone / "refs" / "lineage" / sha1


def record_of(pipeline: Pipeline, sha1: str) -> str:
    return index_entry(pipeline, sha1).read_text().split()[1]


def zone_object(pipeline: Pipeline, sha1: str) -> Path:
    return pipeline.zone / "sha1" / sha1[:2] / sha1[2:4] / sha1[4:6] / sha1


def test_machine_b_gets_exactly_the_pipeline_dag(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    b = store_b(tmp_path, p)
    assert not (tmp_path / "store-b").exists()  # B computed nothing, holds nothing
    graph = kf.lineage(f"sha1://{p.summary}?label=summary.json", store=b)
    assert graph.root == p.summary
    assert list(graph.nodes) == [p.summary, p.filtered, p.raw, p.base]
    assert edges(graph) == {
        (p.summary, p.filtered, "filtered"),
        (p.summary, p.raw, "raw"),
        (p.filtered, p.raw, "raw"),
        (p.raw, p.base, "array"),
    }
    assert graph.complete and graph.gaps == [] and not any(e.cycle for e in graph.edges)
    n = graph.nodes
    assert [n[s].depth for s in graph.nodes] == [0, 1, 1, 2]
    assert (n[p.summary].tool, n[p.summary].function) == ("prefect", "pipeline_funcs.summarize_fn")
    assert [i.name for i in n[p.summary].inputs] == ["filtered", "raw"]
    assert (n[p.filtered].tool, n[p.filtered].function) == ("memo", "pipeline_funcs.smooth")
    assert n[p.filtered].key == p.key
    width = {i.name: i for i in n[p.filtered].inputs}["width"]
    assert width.value == 5 and width.refs == () and width.token and len(width.token) == 40
    for sha1, layers in ((p.raw, ["from-kachery-" + p.base, "mul"]), (p.base, ["arange"])):
        assert (n[sha1].tool, n[sha1].function) == ("dask", "kachery_flows.dask.to_kachery")
        (array,) = n[sha1].inputs
        assert array.detail["layers"] == layers and array.detail["shape"] == [400]
    for node in n.values():
        assert node.status == "computed" and node.problem is None and not node.truncated
        assert node.host == socket.gethostname()
        assert node.duration is not None and node.duration > 0
        assert node.created is not None and datetime.fromisoformat(node.created).tzinfo
        assert node.record_uri == f"sha1://{record_of(p, node.sha1)}"
        assert node.code and (node.tool == "dask" or node.code.startswith("source:"))
    # every record was read through the zone into B's own cache
    for node in n.values():
        assert b.object_path(node.record_uri).exists()


def test_a_memo_key_is_a_root_too(pipeline: Pipeline, tmp_path: Path) -> None:
    graph = kf.lineage(pipeline.key, store=store_b(tmp_path, pipeline))
    assert graph.root == pipeline.filtered
    assert set(graph.nodes) == {pipeline.filtered, pipeline.raw, pipeline.base}


def test_depth_limits_the_walk(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    b = store_b(tmp_path, p)
    one = kf.lineage(f"sha1://{p.summary}", depth=1, store=b)
    assert set(one.nodes) == {p.summary, p.filtered, p.raw}
    assert (p.filtered, p.raw, "raw") in edges(one)  # both already in the graph
    assert one.nodes[p.raw].truncated and not one.nodes[p.filtered].truncated
    assert not one.complete and one.gaps == []
    zero = kf.lineage(f"sha1://{p.summary}", depth=0, store=b)
    assert list(zero.nodes) == [p.summary] and zero.nodes[p.summary].truncated
    with pytest.raises(ValueError, match="depth"):
        kf.lineage(f"sha1://{p.summary}", depth=-1, store=b)


def test_a_missing_record_is_a_marked_gap(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    record = record_of(p, p.raw)
    zone_object(p, record).unlink()
    graph = kf.lineage(f"sha1://{p.summary}", store=store_b(tmp_path, p))
    assert set(graph.nodes) == {p.summary, p.filtered, p.raw}  # base is beyond the gap
    gap = graph.nodes[p.raw]
    assert graph.gaps == [gap] and gap.status == "missing"
    assert gap.record_uri == f"sha1://{record}" and f"sha1://{record}" in (gap.problem or "")
    assert graph.nodes[p.summary].status == graph.nodes[p.filtered].status == "computed"


def test_a_damaged_record_is_a_marked_gap(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    path = zone_object(p, record_of(p, p.filtered))
    path.write_bytes(path.read_bytes().replace(b"smooth", b"smoosh"))
    graph = kf.lineage(f"sha1://{p.summary}", store=store_b(tmp_path, p))
    assert set(graph.nodes) == {p.summary, p.filtered, p.raw, p.base}  # raw via summary
    assert [g.sha1 for g in graph.gaps] == [p.filtered]
    assert graph.nodes[p.filtered].status == "damaged"
    assert "damaged" in (graph.nodes[p.filtered].problem or "")
    assert (p.filtered, p.raw, "raw") not in edges(graph)


def test_a_damaged_index_entry_is_a_marked_gap(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    index_entry(p, p.filtered).write_text("kfl1 not-a-hash")
    index_entry(p, p.base).write_text(index_entry(p, p.summary).read_text())
    graph = kf.lineage(f"sha1://{p.summary}", store=store_b(tmp_path, p))
    filtered, base = graph.nodes[p.filtered], graph.nodes[p.base]
    assert filtered.status == "damaged" and "index entry" in (filtered.problem or "")
    assert base.status == "damaged" and "describes another result" in (base.problem or "")
    assert {g.sha1 for g in graph.gaps} == {p.filtered, p.base}
    assert graph.nodes[p.raw].status == "computed"


def test_a_forged_cycle_ends(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    b = store_b(tmp_path, p)
    forged = b.load_json(f"sha1://{record_of(p, p.base)}")
    forged["inputs"]["array"]["refs"] = [f"sha1://{p.summary}"]
    ref = b.put_json(forged)  # lands in the zone, like anyone's record
    index_entry(p, p.base).write_text(f"kfl1 {ref.sha1}")
    graph = kf.lineage(f"sha1://{p.summary}", store=b)
    assert set(graph.nodes) == {p.summary, p.filtered, p.raw, p.base}
    cycles = [(e.parent, e.child) for e in graph.edges if e.cycle]
    assert cycles == [(p.base, p.summary)]


def test_an_object_nobody_computed_is_a_source(store: Store) -> None:
    uri = store.store_text("hello")
    graph = kf.lineage(uri, store=store)
    node = graph.nodes[graph.root]
    assert node.status == "source" and node.inputs == () and graph.complete
    assert kf.lineage(store.put_text("hello"), store=store).root == graph.root  # a Ref
    with pytest.raises(kf.InvalidURIError):
        kf.lineage("sha1://not-a-hash", store=store)
