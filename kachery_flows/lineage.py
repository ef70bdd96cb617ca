"""Where did this result come from? From a result's URI (or a memo key) back to the
records that produced it, their inputs, the records that produced those, and so on.

::

    graph = kf.lineage("sha1://...")          # or a memo key; depth=, store=
    node = graph.nodes[graph.root]
    node.function, node.code, node.duration, node.host, node.created
    for edge in graph.inputs_of(graph.root): graph.nodes[edge.child] ...

A node is a stored object (named by its hash). Its producing record is found through the
reverse index (:mod:`kachery_flows._lineage_index`: one ref read, in the store's ref map,
which is the zone's when the zone is writable), so records written on other machines
are found and read through the zone. Every input that is a Ref or a URI (also inside
lists and dicts) becomes an edge to that object's node; other inputs are listed on the
node by their content token (and their value when it is a short scalar).

The walk never raises for what it finds: a record that is missing everywhere, damaged,
not a record, or describing another object, an index entry that is not one, or a zone
that fails, becomes a node whose ``status`` says so (``missing`` or ``damaged``) and whose
``problem`` says why; the rest of the graph is still returned. Objects nobody computed
(stored with ``store_*``) are ``source`` nodes. Cycles (only a forged record can make
one) end at the node already seen, and the edge is marked ``cycle``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ._lineage_index import lookup
from .action_cache import action_cache
from .errors import KacheryError
from .records import RECORD_SCHEMA, read_record_object
from .store import Store, get_default_store
from .uri import Ref, is_sha1_hex, parse_uri

__all__ = ["MAX_NODES", "Lineage", "LineageEdge", "LineageInput", "LineageNode", "lineage"]

#: The walk stops adding nodes beyond this many (the nodes it could not expand are
#: marked ``truncated``).
MAX_NODES = 5000

Status = Literal["computed", "source", "missing", "damaged"]
_DETAIL_FIELDS = ("dtype", "shape", "graph", "layers")
_MAX_TEXT = 2000


@dataclass(frozen=True)
class LineageInput:
    """One argument of a recorded call."""

    name: str
    type: str
    #: Content token (hex) of the argument, as in the memo key; None if it had none.
    token: str | None
    #: URIs of the stored objects the argument is or contains (each is an edge).
    refs: tuple[str, ...] = ()
    #: The value, for short scalars and strings.
    value: Any = None
    #: Other recorded facts: ``dtype``, ``shape``; for Dask arrays ``graph`` and ``layers``.
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageNode:
    """A stored object and, when known, the record of the call that produced it."""

    sha1: str
    status: Status
    #: Distance from the root (in edges, along the shortest path).
    depth: int
    record_uri: str | None = None
    #: What went wrong, for ``missing`` and ``damaged`` nodes.
    problem: str | None = None
    #: ``memo``, ``prefect`` or ``dask``.
    tool: str | None = None
    function: str | None = None
    version: str | None = None
    #: Code fingerprint of the function (or the Dask graph name).
    code: str | None = None
    key: str | None = None
    inputs: tuple[LineageInput, ...] = ()
    duration: float | None = None
    host: str | None = None
    created: str | None = None
    result_codec: str | None = None
    result_size: int | None = None
    result_type: str | None = None
    #: Inputs not followed (depth limit or :data:`MAX_NODES`).
    truncated: bool = False

    @property
    def uri(self) -> str:
        """The object's ``sha1://`` URI."""
        return f"sha1://{self.sha1}"


@dataclass(frozen=True)
class LineageEdge:
    """``parent`` (a call's result) was computed from ``child`` (argument ``input``)."""

    parent: str
    child: str
    input: str
    #: The edge leads back to a node on the path from the root (a forged record).
    cycle: bool = False


@dataclass(frozen=True)
class Lineage:
    """The result of :func:`lineage`: nodes by object hash (in walk order) and edges."""

    root: str
    nodes: Mapping[str, LineageNode]
    edges: tuple[LineageEdge, ...]

    @property
    def gaps(self) -> list[LineageNode]:
        """Nodes whose record is missing or damaged."""
        return [n for n in self.nodes.values() if n.status in ("missing", "damaged")]

    @property
    def complete(self) -> bool:
        """No gaps and nothing truncated."""
        return not self.gaps and not any(n.truncated for n in self.nodes.values())

    def inputs_of(self, sha1: str) -> list[LineageEdge]:
        """The edges from node ``sha1`` to its inputs' nodes."""
        return [e for e in self.edges if e.parent == sha1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (what ``kachery-flows lineage --json`` prints)."""
        nodes = []
        for node in self.nodes.values():
            item = asdict(node)
            item["uri"] = node.uri
            item["inputs"] = [
                {**asdict(i), "refs": list(i.refs), "detail": dict(i.detail)} for i in node.inputs
            ]
            nodes.append(item)
        return {
            "root": self.root,
            "complete": self.complete,
            "nodes": nodes,
            "edges": [asdict(e) for e in self.edges],
        }


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _uris(values: Any) -> list[str]:
    found = []
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, str):
            try:
                uri = f"sha1://{parse_uri(value).sha1}"
            except ValueError:
                continue
            if uri not in found:
                found.append(uri)
    return found


def _input(name: str, info: Any) -> LineageInput:
    if not isinstance(info, dict):
        return LineageInput(name[:_MAX_TEXT], "?", None)
    refs = _uris(info.get("ref"))
    refs += [u for u in _uris(info.get("refs")) if u not in refs]
    value = info.get("value")
    if not (value is None or isinstance(value, (bool, int, str)) or _number(value) is not None):
        value = None
    detail = {k: info[k] for k in _DETAIL_FIELDS if k in info}
    return LineageInput(
        name[:_MAX_TEXT],
        _text(info.get("type")) or "?",
        _text(info.get("token")),
        tuple(refs),
        _text(value) if isinstance(value, str) else value,
        detail,
    )


def _from_record(sha1: str, depth: int, record_sha1: str, record: dict[str, Any]) -> LineageNode:
    result = record.get("result")
    result = result if isinstance(result, dict) else {}
    uri = f"sha1://{record_sha1}"
    if result.get("sha1") != sha1:
        return LineageNode(
            sha1,
            "damaged",
            depth,
            uri,
            problem=f"the record sha1://{record_sha1} describes another result "
            f"({_text(result.get('sha1'))}), not this object",
        )
    inputs = record.get("inputs")
    producer = record.get("producer")
    tool = _text(producer.get("tool")) if isinstance(producer, dict) else "memo"
    size = result.get("size")
    return LineageNode(
        sha1,
        "computed",
        depth,
        uri,
        tool=tool,
        function=_text(record.get("function")),
        version=_text(record.get("version")),
        code=_text(record.get("code")),
        key=_text(record.get("key")),
        inputs=tuple(_input(str(n), i) for n, i in sorted(inputs.items()))
        if isinstance(inputs, dict)
        else (),
        duration=_number(record.get("duration")),
        host=_text(record.get("host")),
        created=_text(record.get("created")),
        result_codec=_text(result.get("codec")),
        result_size=size if type(size) is int and size >= 0 else None,
        result_type=_text(result.get("type")),
    )


class _Walker:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.cache = action_cache(store)

    def _producer(self, sha1: str) -> tuple[str | None, str | None]:
        try:
            return lookup(self.cache.refs, sha1)
        except KacheryError as exc:
            return None, f"could not read the index entry of this object: {exc}"

    def _read(self, record_sha1: str) -> tuple[dict[str, Any] | None, Status, str | None]:
        uri = f"sha1://{record_sha1}"
        record = read_record_object(self.store, record_sha1)
        if record is not None:
            return record, "computed", None
        try:
            present = self.store.exists(uri)
        except KacheryError as exc:
            return None, "missing", f"the record {uri} cannot be read: {exc}"
        if present:
            return (
                None,
                "damaged",
                (
                    f"the record {uri} is damaged (not a {RECORD_SCHEMA} record, or its bytes "
                    "do not match its hash)"
                ),
            )
        return None, "missing", f"the record {uri} is in neither the store nor its zone"

    def node(self, sha1: str, depth: int, record_sha1: str | None) -> LineageNode:
        if record_sha1 is None:
            record_sha1, problem = self._producer(sha1)
            if problem is not None:
                return LineageNode(sha1, "damaged", depth, problem=problem)
            if record_sha1 is None:
                return LineageNode(sha1, "source", depth)
        record, status, problem = self._read(record_sha1)
        if record is None:
            return LineageNode(
                sha1, status, depth, record_uri=f"sha1://{record_sha1}", problem=problem
            )
        return _from_record(sha1, depth, record_sha1, record)

    def root(self, text: str) -> tuple[str, str | None]:
        """The root object's hash, and its record when ``text`` is a memo key."""
        text = text.strip()
        if is_sha1_hex(text):
            try:
                entry = self.cache.get(text)
            except KacheryError:
                entry = None
            if entry is not None:
                return entry.result, entry.record
            return text, None
        return parse_uri(text).sha1, None


def _mark_cycles(root: str, edges: list[LineageEdge]) -> list[LineageEdge]:
    children: dict[str, list[int]] = {}
    for i, edge in enumerate(edges):
        children.setdefault(edge.parent, []).append(i)
    state: dict[str, int] = {root: 1}  # 1 on the path, 2 done
    back: set[int] = set()
    stack = [(root, iter(children.get(root, [])))]
    while stack:
        sha1, it = stack[-1]
        index = next(it, None)
        if index is None:
            state[sha1] = 2
            stack.pop()
            continue
        child = edges[index].child
        if state.get(child) == 1:
            back.add(index)
        elif child not in state:
            state[child] = 1
            stack.append((child, iter(children.get(child, []))))
    return [
        LineageEdge(e.parent, e.child, e.input, True) if i in back else e
        for i, e in enumerate(edges)
    ]


def lineage(uri_or_key: str | Ref, depth: int | None = None, store: Store | None = None) -> Lineage:
    """Walk from a result back to the records and inputs that produced it.

    Parameters
    ----------
    uri_or_key:
        A result's URI (any accepted form) or :class:`~kachery_flows.Ref`, a bare 40-hex
        hash, or a memo key (``spectrum.key(x)``).
    depth:
        Follow inputs at most this many steps from the root (``0``: the root alone);
        default: all the way.
    store:
        The store (and zone) to read; default: the default store.

    Returns
    -------
    Lineage
        The graph (see the module docs): missing or damaged records are nodes with a
        ``problem``, never an exception.

    Raises
    ------
    InvalidURIError
        If ``uri_or_key`` is neither a URI nor 40 hex digits.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0 or None, not {depth}")
    walker = _Walker(store if store is not None else get_default_store())
    root, record = walker.root(str(uri_or_key))
    nodes: dict[str, LineageNode] = {}
    edges: list[LineageEdge] = []
    queue: deque[tuple[str, int, str | None]] = deque([(root, 0, record)])
    queued = {root}
    while queue:
        sha1, level, record = queue.popleft()
        node = walker.node(sha1, level, record)
        follow = depth is None or level < depth
        truncated = False
        for item in node.inputs:
            for uri in item.refs:
                child = uri[len("sha1://") :]
                if child not in queued and not (follow and len(queued) < MAX_NODES):
                    truncated = True
                    continue
                edges.append(LineageEdge(sha1, child, item.name))
                if child not in queued:
                    queued.add(child)
                    queue.append((child, level + 1, None))
        nodes[sha1] = replace(node, truncated=truncated) if truncated else node
    return Lineage(root, nodes, tuple(_mark_cycles(root, edges)))
