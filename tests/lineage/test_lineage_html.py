"""The HTML page of ``kachery-flows lineage --html`` in a real headless Chromium: every
node drawn, details on click, no console errors, no network requests; a few hundred
nodes fold into a readable picture and unfold on request."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from chromium import Chromium, Page
from conftest import Pipeline
from pipeline_funcs import wide_pipeline

import kachery_flows as kf
from kachery_flows import Store
from kachery_flows.cli import main
from kachery_flows.zones.local import LocalZone

pytestmark = pytest.mark.integration

SHOWN = "[...document.querySelectorAll('g.node[data-sha1]')].map(e => e.dataset.sha1)"
GROUPS = "document.querySelectorAll('g.node.group').length"
OVERLAPS = """(() => {
  const r = [...document.querySelectorAll('g.node')].map(e => e.getBoundingClientRect());
  let n = 0;
  for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++)
    if (r[i].left < r[j].right && r[j].left < r[i].right &&
        r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++;
  return n;
})()"""


def click(page: Page, selector: str) -> None:
    page.eval(
        f"document.querySelector({selector!r}).dispatchEvent("
        "new MouseEvent('click', {bubbles: true}))"
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_clean(page: Page, url: str) -> None:
    assert page.console_errors() == []
    assert page.requests() == [url]  # the page itself, nothing else


def write_page(
    tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch, zone: Path | None = None
) -> tuple[Path, str]:
    if zone is not None:
        monkeypatch.setenv("KACHERY_ZONE", f"file://{zone}")
    page = tmp_path / "lineage.html"
    assert main(["lineage", uri, "--html", str(page)]) == 0
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    return page, page.as_uri()


def test_the_pipeline_page_in_chromium(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = pipeline
    _, url = write_page(tmp_path, f"sha1://{p.summary}", monkeypatch, p.zone)
    with Chromium(tmp_path) as browser:
        page = browser.open(url)
        assert page.eval("document.body.dataset.ready") == "1"
        assert sorted(page.eval(SHOWN)) == sorted([p.summary, p.filtered, p.raw, p.base])
        assert page.eval(GROUPS) == 0 and page.eval(OVERLAPS) == 0
        assert page.eval("document.querySelectorAll('path.edge').length") == 4
        details = page.eval("document.getElementById('details').textContent")
        assert "pipeline_funcs.summarize_fn" in details and f"sha1://{p.summary}" in details
        click(page, f"g.node[data-sha1='{p.filtered}']")
        details = page.eval("document.getElementById('details').textContent")
        assert "pipeline_funcs.smooth" in details and p.key in details
        assert f"sha1://{p.raw}" in details  # the input's URI, with a copy button
        assert page.eval("document.querySelectorAll('#details button').length") >= 3
        click(page, "#details button")
        shot = page.screenshot(tmp_path / "pipeline.png")
        assert png_size(shot) == (1280, 800) and len(shot) > 10_000
        assert_clean(page, url)
    graph = kf.lineage(f"sha1://{p.summary}", store=Store(tmp_path / "b", zone=LocalZone(p.zone)))
    assert len(graph.nodes) == 4


def test_three_hundred_nodes_fold_and_unfold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = wide_pipeline(150)
    graph = kf.lineage(root.uri)
    assert len(graph.nodes) == 301 and graph.complete
    _, url = write_page(tmp_path, root.uri, monkeypatch)
    with Chromium(tmp_path) as browser:
        page = browser.open(url)
        folded: list[Any] = page.eval(SHOWN)
        assert len(folded) == 3 and page.eval(GROUPS) == 1  # combine, one clean, its chunk
        assert "+149 more" in page.eval("document.querySelector('g.node.group').textContent")
        page.screenshot(tmp_path / "folded.png")
        click(page, "g.node.group")
        assert sorted(page.eval(SHOWN)) == sorted(graph.nodes)
        assert page.eval(GROUPS) == 0 and page.eval(OVERLAPS) == 0
        shot = page.screenshot(tmp_path / "unfolded.png")
        assert png_size(shot) == (1280, 800)
        assert_clean(page, url)
