# ruff: noqa: E501  (the page's script and style are kept as written, long lines included)
"""One self-contained HTML page drawing a :class:`~kachery_flows.lineage.Lineage` graph.

No network: the page holds its data (a JSON script element, with ``<``, ``>`` and ``&``
escaped so record text cannot close it), its style and its script; it draws the DAG as
inline SVG. Record text reaches the page only through ``textContent`` (never parsed as
HTML). Layout: layers by longest path from the result (inputs below what they made),
ordered within a layer by a few barycenter sweeps; where one call has three or more
inputs made the same way (same function, same shape of history), the first is drawn and
the rest fold into one "+N more" node that expands on click. Clicking a node shows its
record, with buttons that copy URIs.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render_html"]

_STYLE = """
body{margin:0;font:13px system-ui,sans-serif;color:#1d2433;background:#f7f8fa;display:flex;
height:100vh;overflow:hidden}
#graph{flex:1;overflow:auto;position:relative}
#side{width:380px;border-left:1px solid #d5d9e0;background:#fff;overflow:auto;padding:12px;
box-sizing:border-box}
#bar{position:sticky;top:0;left:0;background:#f7f8faee;padding:6px 10px;z-index:1;
border-bottom:1px solid #e3e6eb}
#bar button{margin-right:4px}
h1{font-size:15px;margin:0 0 8px}h2{font-size:13px;margin:14px 0 4px}
.node rect{fill:#fff;stroke:#7b8794;rx:6}
.node.computed rect{fill:#eef5ff;stroke:#3f72c0}
.node.source rect{fill:#f2f2f2;stroke:#8a8a8a}
.node.missing rect,.node.damaged rect{fill:#fff0f0;stroke:#c0392b;stroke-dasharray:5 3}
.node.group rect{fill:#fffbe6;stroke:#b58900}
.node.selected rect{stroke-width:3}
.node text{pointer-events:none}.node{cursor:pointer}
.edge{fill:none;stroke:#9aa5b1;stroke-width:1.2}.edge.cycle{stroke:#c0392b;stroke-dasharray:4 3}
.label{font-size:10px;fill:#5b6573}
table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:2px 4px;
border-bottom:1px solid #eef0f3;word-break:break-all}td:first-child{color:#5b6573;
white-space:nowrap;word-break:normal}
.uri{font-family:ui-monospace,monospace;font-size:11px}
.gap{color:#c0392b}
"""

_SCRIPT = r"""
"use strict";
const data = JSON.parse(document.getElementById("lineage-data").textContent);
const byId = new Map(data.nodes.map(n => [n.sha1, n]));
const kids = new Map(data.nodes.map(n => [n.sha1, []]));
for (const e of data.edges) if (!e.cycle) kids.get(e.parent).push(e.child);
const parents = new Map(data.nodes.map(n => [n.sha1, 0]));
for (const e of data.edges) parents.set(e.child, parents.get(e.child) + 1);
const sig = new Map();
function signature(id, seen) {
  if (sig.has(id)) return sig.get(id);
  if (seen.has(id)) return "cycle";
  seen.add(id);
  const n = byId.get(id);
  const s = (n.function || n.status) + "(" + kids.get(id).map(k => signature(k, seen)).sort().join(",") + ")";
  seen.delete(id);
  sig.set(id, s);
  return s;
}
const expanded = new Set();
const W = 200, H = 46, GX = 24, GY = 60, PAD = 20;
let selected = data.root;

function visibleGraph() {
  const nodes = new Map(), edges = [];
  const stack = [data.root];
  nodes.set(data.root, {id: data.root, node: byId.get(data.root)});
  while (stack.length) {
    const id = stack.pop();
    const groups = new Map();
    for (const k of kids.get(id)) {
      const s = signature(k, new Set());
      if (!groups.has(s)) groups.set(s, []);
      groups.get(s).push(k);
    }
    for (const [s, members] of groups) {
      let shown = members;
      const gid = "group:" + id + ":" + s;
      if (members.length >= 3 && !expanded.has(gid) && members.slice(1).every(m => parents.get(m) === 1)) {
        shown = members.slice(0, 1);
        nodes.set(gid, {id: gid, group: members.slice(1), parent: id});
        edges.push([id, gid]);
      }
      for (const k of shown) {
        edges.push([id, k]);
        if (!nodes.has(k)) { nodes.set(k, {id: k, node: byId.get(k)}); stack.push(k); }
      }
    }
  }
  for (const e of data.edges) if (e.cycle && nodes.has(e.parent) && nodes.has(e.child)) edges.push([e.parent, e.child, true]);
  return {nodes, edges};
}

function layout(g) {
  const layer = new Map([[data.root, 0]]);
  const order = [data.root];
  for (let changed = true, round = 0; changed && round < g.nodes.size + 1; round++) {
    changed = false;
    for (const [a, b, cyc] of g.edges) {
      if (cyc || !layer.has(a)) continue;
      const want = layer.get(a) + 1;
      if (!layer.has(b) || layer.get(b) < want) { layer.set(b, want); changed = true; }
    }
  }
  const rows = [];
  for (const id of g.nodes.keys()) {
    const l = layer.get(id) || 0;
    (rows[l] = rows[l] || []).push(id);
  }
  const pos = new Map();
  const place = () => rows.forEach(r => r.forEach((id, i) => pos.set(id, i)));
  place();
  const up = new Map();
  for (const [a, b, cyc] of g.edges) if (!cyc) { if (!up.has(b)) up.set(b, []); up.get(b).push(a); }
  for (let sweep = 0; sweep < 4; sweep++) {
    for (let l = 1; l < rows.length; l++) {
      const bary = id => { const p = up.get(id) || []; return p.length ? p.reduce((s, x) => s + pos.get(x), 0) / p.length : pos.get(id); };
      rows[l].sort((x, y) => bary(x) - bary(y));
      place();
    }
  }
  const widest = Math.max(...rows.map(r => r.length));
  const xy = new Map();
  rows.forEach((r, l) => {
    const offset = (widest - r.length) * (W + GX) / 2;
    r.forEach((id, i) => xy.set(id, [PAD + offset + i * (W + GX), PAD + 40 + l * (H + GY)]));
  });
  return {xy, width: PAD * 2 + widest * (W + GX), height: PAD * 2 + 40 + rows.length * (H + GY)};
}

const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function short(text, n) { text = String(text == null ? "" : text); return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }
function titleOf(v) {
  if (v.group) return "+" + v.group.length + " more like " + short((byId.get(v.group[0]).function || "").split(".").pop(), 14);
  const n = v.node;
  if (n.status === "computed") return (n.function || "?").split(".").pop();
  return n.status === "source" ? "stored object" : n.status.toUpperCase() + " record";
}
function subOf(v) {
  if (v.group) return "click to expand";
  const n = v.node, bits = ["sha1:" + n.sha1.slice(0, 10)];
  if (n.tool) bits.push(n.tool);
  if (n.duration != null) bits.push(n.duration < 1 ? (n.duration * 1000).toFixed(1) + " ms" : n.duration.toFixed(2) + " s");
  return bits.join(" \u00b7 ");
}
let zoom = 1;
function draw() {
  const g = visibleGraph(), L = layout(g);
  const svg = document.getElementById("dag");
  svg.textContent = "";
  svg.setAttribute("width", L.width * zoom);
  svg.setAttribute("height", L.height * zoom);
  svg.setAttribute("viewBox", "0 0 " + L.width + " " + L.height);
  const edges = el("g", {}, svg), boxes = el("g", {}, svg);
  for (const [a, b, cyc] of g.edges) {
    const [x1, y1] = L.xy.get(a), [x2, y2] = L.xy.get(b);
    const sx = x1 + W / 2, sy = y1 + H, tx = x2 + W / 2, ty = y2;
    el("path", {class: "edge" + (cyc ? " cycle" : ""), d: "M" + sx + "," + sy + " C" + sx + "," + (sy + GY / 2) + " " + tx + "," + (ty - GY / 2) + " " + tx + "," + ty}, edges);
  }
  for (const v of g.nodes.values()) {
    const [x, y] = L.xy.get(v.id);
    const cls = v.group ? "group" : v.node.status;
    const box = el("g", {class: "node " + cls + (v.id === selected ? " selected" : ""), transform: "translate(" + x + "," + y + ")"}, boxes);
    box.dataset.id = v.id;
    if (!v.group) box.dataset.sha1 = v.id;
    el("rect", {width: W, height: H}, box);
    el("text", {x: 8, y: 18}, box).textContent = short(titleOf(v), 28);
    el("text", {x: 8, y: 35, class: "label"}, box).textContent = short(subOf(v), 36);
    box.addEventListener("click", () => {
      if (v.group) { expanded.add(v.id); draw(); return; }
      selected = v.id; draw(); show(v.node);
    });
  }
  document.getElementById("count").textContent = data.nodes.length + " objects, " + g.nodes.size + " boxes shown";
  const focus = L.xy.get(g.nodes.has(selected) ? selected : data.root), pane = document.getElementById("graph");
  const left = focus[0] * zoom, right = (focus[0] + W) * zoom;
  if (left < pane.scrollLeft || right > pane.scrollLeft + pane.clientWidth) pane.scrollLeft = Math.max(0, (left + right - pane.clientWidth) / 2);
}

function row(table, name, value, uri) {
  const tr = table.insertRow(), a = tr.insertCell(), b = tr.insertCell();
  a.textContent = name;
  const span = document.createElement("span");
  span.textContent = value == null ? "-" : String(value);
  if (uri) span.className = "uri";
  b.appendChild(span);
  if (uri) {
    const button = document.createElement("button");
    button.textContent = "copy";
    button.addEventListener("click", () => copy(uri, button));
    b.appendChild(document.createTextNode(" "));
    b.appendChild(button);
  }
}
function copy(text, button) {
  const done = () => { button.textContent = "copied"; };
  const fallback = () => {
    const area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); done(); } catch (err) { button.textContent = "select+copy"; }
    area.remove();
  };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
  else fallback();
}
function show(n) {
  const side = document.getElementById("details");
  side.textContent = "";
  const h = document.createElement("h1");
  h.textContent = n.function || (n.status === "source" ? "stored object (no record)" : n.status + " record");
  side.appendChild(h);
  if (n.problem) { const p = document.createElement("p"); p.className = "gap"; p.textContent = n.problem; side.appendChild(p); }
  const t = document.createElement("table");
  side.appendChild(t);
  row(t, "result", n.uri, n.uri);
  for (const [k, v] of [["status", n.status], ["tool", n.tool], ["version", n.version], ["code", n.code],
      ["memo key", n.key], ["duration", n.duration == null ? null : n.duration + " s"], ["host", n.host],
      ["created", n.created], ["codec", n.result_codec], ["size", n.result_size == null ? null : n.result_size + " bytes"],
      ["type", n.result_type]]) if (v != null && v !== "") row(t, k, v);
  if (n.record_uri) row(t, "record", n.record_uri, n.record_uri);
  if (n.inputs.length) {
    const h2 = document.createElement("h2"); h2.textContent = "inputs"; side.appendChild(h2);
    const ti = document.createElement("table"); side.appendChild(ti);
    for (const i of n.inputs) {
      let text = i.type + (i.value != null ? " = " + JSON.stringify(i.value) : "");
      for (const k in i.detail) text += " " + k + "=" + JSON.stringify(i.detail[k]);
      if (i.token) text += " token " + i.token.slice(0, 12);
      row(ti, i.name, text);
      for (const r of i.refs) row(ti, "", r, r);
    }
  }
}
document.getElementById("zin").addEventListener("click", () => { zoom *= 1.25; draw(); });
document.getElementById("zout").addEventListener("click", () => { zoom /= 1.25; draw(); });
document.getElementById("expand").addEventListener("click", () => {
  for (const id of byId.keys()) for (const k of kids.get(id)) expanded.add("group:" + id + ":" + signature(k, new Set()));
  draw();
});
draw();
show(byId.get(data.root));
document.body.dataset.ready = "1";
"""


def _json_for_script(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(graph: dict[str, Any], title: str) -> str:
    """The page for ``graph`` (a :meth:`Lineage.to_dict`) titled ``title``."""
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{safe_title}</title><style>{_STYLE}</style></head><body>"
        '<div id="graph"><div id="bar"><b>lineage</b> '
        '<button id="zin">+</button><button id="zout">&minus;</button>'
        '<button id="expand">expand all</button> <span id="count"></span></div>'
        '<svg id="dag" xmlns="http://www.w3.org/2000/svg"></svg></div>'
        '<div id="side"><div id="details"></div></div>'
        f'<script type="application/json" id="lineage-data">{_json_for_script(graph)}'
        f"</script><script>{_SCRIPT}</script></body></html>\n"
    )
