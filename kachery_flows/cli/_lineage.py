"""``kachery-flows lineage URI|KEY``: where a result came from, as a tree, JSON or a page.

Everything printed from records is escaped: records may come from a shared zone, whose
writers must not be able to send control sequences to the terminal.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import EXIT_CODES, command_store, print_json
from ._escape import printable


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _input_text(item: dict[str, Any]) -> str:
    text = f"{printable(item['name'])}: {printable(item['type'])}"
    if item["value"] is not None:
        text += f" = {printable(repr(item['value']))}"
    for key, value in item["detail"].items():
        text += f" {printable(key)}={printable(value)}"
    if item["refs"]:
        text += " " + " ".join(printable(r) for r in item["refs"])
    elif item["token"]:
        text += f" (token {printable(item['token'][:12])})"
    return text


def _headline(node: dict[str, Any]) -> str:
    uri = node["uri"]
    status = node["status"]
    if status == "source":
        return f"{uri}  stored object (no record)"
    if status != "computed":
        return f"{uri}  !! {status.upper()} record: {printable(node['problem'])}"
    version = node["version"]
    code = f"version {printable(version)}" if version is not None else printable(node["code"])
    return (
        f"{uri}  {printable(node['function'])} [{printable(node['tool'])}]  {code}  "
        f"{_seconds(node['duration'])}  {printable(node['host'])}  {printable(node['created'])}"
    )


def print_tree(graph: dict[str, Any]) -> None:
    """Print :meth:`Lineage.to_dict` output as an indented tree; a node reached again is
    printed once, later mentions say ``(shown above)``."""
    nodes = {n["sha1"]: n for n in graph["nodes"]}
    children: dict[str, list[dict[str, Any]]] = {}
    for edge in graph["edges"]:
        children.setdefault(edge["parent"], []).append(edge)
    shown: set[str] = set()
    stack: list[tuple[str, str, str, str]] = [(graph["root"], "", "", "")]
    while stack:
        sha1, lead, rest, via = stack.pop()
        node = nodes[sha1]
        prefix = f"{printable(via)} <- " if via else ""
        if sha1 in shown:
            print(f"{lead}{prefix}{node['uri']}  (shown above)")
            continue
        shown.add(sha1)
        print(f"{lead}{prefix}{_headline(node)}")
        if node["record_uri"]:
            print(f"{rest}    record {node['record_uri']}")
        for item in node["inputs"]:
            print(f"{rest}    in {_input_text(item)}")
        if node["truncated"]:
            print(f"{rest}    ... inputs not followed (--depth)")
        edges = children.get(sha1, [])
        for i in reversed(range(len(edges))):
            edge = edges[i]
            last = i == len(edges) - 1
            branch = "`-- " if last else "|-- "
            cont = "    " if last else "|   "
            via_text = edge["input"] + (" (cycle)" if edge["cycle"] else "")
            if edge["cycle"]:
                print(f"{rest}{branch}{printable(via_text)} <- sha1://{edge['child']}")
                continue
            stack.append((edge["child"], rest + branch, rest + cont, via_text))
    gaps = [n for n in graph["nodes"] if n["status"] in ("missing", "damaged")]
    if gaps:
        print(f"{len(gaps)} gap(s): the records above marked !! could not be read")


def cmd_lineage(args: argparse.Namespace) -> int:
    from .._lineage_html import render_html
    from ..lineage import lineage

    graph = lineage(args.target, depth=args.depth, store=command_store(args)).to_dict()
    if args.html is not None:
        page = render_html(graph, f"lineage of sha1://{graph['root']}")
        Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        print_json(graph)
    elif args.html is None:
        print_tree(graph)
    else:
        print(f"wrote {printable(args.html)} ({len(graph['nodes'])} objects)")
    return EXIT_CODES["ok"]


def register(sub: Any) -> None:
    """Add the ``lineage`` command to ``sub``."""
    p = sub.add_parser(
        "lineage",
        help="show how a result was made: records, code, inputs, recursively",
        description="Walks from a result (URI) or a memo key to the record that produced "
        "it, its inputs, and the records that produced those (found in the store and its "
        "zone). Missing or damaged records are marked, not fatal.",
    )
    p.add_argument("target", metavar="URI|KEY", help="a result URI, object hash or memo key")
    p.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="follow inputs at most N steps (default: all the way)",
    )
    p.add_argument("--json", action="store_true", help="print the graph as JSON")
    p.add_argument(
        "--html",
        metavar="FILE",
        default=None,
        help="write a self-contained HTML page drawing the graph",
    )
    p.set_defaults(func=cmd_lineage)
