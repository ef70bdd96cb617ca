"""Run the benchmarks and write the benchmark report: ``docs/benchmarks.md`` and its plots.

    python benchmarks/report.py                  # every bench_*.py at its default sizes
    python benchmarks/report.py --quick          # small sizes (a smoke run, minutes)
    python benchmarks/report.py --only store memoize
    python benchmarks/report.py --from-json results.jsonl   # re-render saved results

Each script records its tables through ``benchmarks/_common.py`` into a JSON-lines file
(``KACHERY_BENCH_JSON``); this script renders them as Markdown tables and one matplotlib
PNG per script under ``docs/img/``. Nothing in the report is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import fmt_seconds

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"

#: Arguments for ``--quick``: small sizes, few rounds. Scripts not listed run as they are.
QUICK_ARGS = {
    "bench_store": ["--sizes-mib", "32", "--repeats", "2"],
    "bench_memoize": ["--mb", "20", "--reps", "3", "--first-call-reps", "2"],
    "bench_small_calls": ["--calls", "300", "--hit-repeats", "2", "--tasks", "10"],
    "bench_zones": ["--size-mib", "32", "--repeats", "2"],
    "bench_kachery_network": ["--sizes-mib", "8", "--repeats", "2"],
    "bench_dask": ["--mb", "20", "--gib", "0.1", "--repeats", "2", "--transfer-repeats", "3"],
    "bench_prefect": ["--mib", "20", "--reps", "2"],
    "bench_scale": [
        "--objects",
        "20000",
        "--entries",
        "2000",
        "--garbage",
        "200",
        "--zone-objects",
        "2000",
        "--large-mib",
        "16",
        "--large-count",
        "2",
        "--chunks",
        "500",
        "--repeats",
        "2",
    ],
    "bench_lineage": ["--large", "20000", "--repeats", "3"],
}

_TITLES = {
    "bench_store": "Storing and loading arrays",
    "bench_memoize": "Memoization (`@kachery_cached`)",
    "bench_small_calls": "Sweeps of small memoized calls",
    "bench_zones": "Zones: shared directory and S3",
    "bench_kachery_network": "The kachery network zone",
    "bench_prefect": "Prefect results",
    "bench_dask": "Dask",
    "bench_scale": "Scale: a million objects, 100,000 memo entries",
    "bench_lineage": "Lineage reverse index",
}


def run_scripts(names: list[str], quick: bool, out: Path) -> list[str]:
    """Run each ``bench_<name>.py``; return the names of scripts that failed."""
    failed = []
    env = dict(os.environ, KACHERY_BENCH_JSON=str(out))
    for name in names:
        script = HERE / f"{name}.py"
        args = QUICK_ARGS.get(name, []) if quick else []
        print(f"== {script.name} {' '.join(args)}", flush=True)
        proc = subprocess.run([sys.executable, str(script), *args], env=env, cwd=HERE)
        if proc.returncode != 0:
            failed.append(name)
    return failed


def load_results(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Tables by script, in the order they were recorded."""
    by_script: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            table = json.loads(line)
            by_script[table["script"]].append(table)
    return dict(by_script)


def _markdown_table(table: dict[str, Any]) -> list[str]:
    if table["kind"] == "ratio":
        base = next(r["seconds"] for r in table["rows"] if r["case"] == table["baseline"])
        lines = [f"| case | median | ÷ {table['baseline']} |", "| --- | ---: | ---: |"]
        lines += [
            f"| {r['case']} | {fmt_seconds(r['seconds'])} | {r['seconds'] / base:.2f}× |"
            for r in table["rows"]
        ]
        return lines
    lines = [
        "| what | kachery-flows | anchor | anchor / ours | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in table["rows"]:
        anchor = r.get("anchor")
        shown = (
            f"{fmt_seconds(anchor)} ({r.get('anchor_name', '')})"
            if anchor is not None
            else r.get("note", "-")
        )
        ratio = f"{anchor / r['ours']:.1f}×" if anchor is not None else "-"
        target = r.get("target", "-")
        lines.append(f"| {r['what']} | {fmt_seconds(r['ours'])} | {shown} | {ratio} | {target} |")
    return lines


def plot_script(name: str, tables: list[dict[str, Any]], path: Path) -> bool:
    """One PNG with a horizontal bar chart per table; False if there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plotted = [t for t in tables if t["kind"] in ("ratio", "comparison")]
    if not plotted:
        return False
    heights = [
        0.9 + 0.32 * max(len(t["rows"]), 1) * (2 if t["kind"] == "comparison" else 1)
        for t in plotted
    ]
    fig, axes = plt.subplots(
        len(plotted),
        1,
        figsize=(9, sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, table in zip(axes[:, 0], plotted, strict=True):
        if table["kind"] == "ratio":
            labels = [r["case"] for r in table["rows"]]
            values = [r["seconds"] for r in table["rows"]]
            colors = ["tab:gray" if lab == table["baseline"] else "tab:blue" for lab in labels]
            ax.barh(labels, values, color=colors)
            for y, v in enumerate(values):
                ax.text(v, y, " " + fmt_seconds(v), va="center", fontsize=8)
        else:
            labels, ours, anchors = [], [], []
            for r in table["rows"]:
                anchor_name = r.get("anchor_name")
                labels.append(f"{r['what']}\nvs {anchor_name}" if anchor_name else r["what"])
                ours.append(r["ours"])
                anchors.append(r.get("anchor") or 0.0)
            ys = range(len(labels))
            ax.barh(
                [y + 0.2 for y in ys], ours, height=0.4, color="tab:blue", label="kachery-flows"
            )
            ax.barh([y - 0.2 for y in ys], anchors, height=0.4, color="tab:gray", label="anchor")
            ax.set_yticks(list(ys), labels)
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("seconds (log scale, lower is better)", fontsize=8)
        ax.set_title(table["title"], fontsize=10)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def write_report(results: dict[str, list[dict[str, Any]]], docs: Path, quick: bool) -> Path:
    """Write ``docs/benchmarks.md`` and ``docs/img/bench_*.png``; return the page's path."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# Benchmark report",
        "",
        "Generated by `python benchmarks/report.py` (`make bench-report`) on "
        f"{when}: {_machine()}.",
        "Every figure is a median of interleaved repetitions measured side by side in one "
        "run; ratios compare against the tool users would otherwise pick. "
        + (
            "This was a **quick** run (small sizes): see the scripts for full sizes."
            if quick
            else "Sizes are each script's defaults."
        ),
        "",
    ]
    order = [s for s in _TITLES if s in results] + sorted(set(results) - set(_TITLES))
    for script in order:
        tables = results[script]
        lines += [f"## {_TITLES.get(script, script)}", "", f"`benchmarks/{script}.py`", ""]
        for table in tables:
            if table["kind"] == "note":
                lines += [f"- {table['title']}", ""]
                continue
            lines += [f"**{table['title']}**", "", *_markdown_table(table), ""]
        if plot_script(script, tables, docs / "img" / f"{script}.png"):
            lines += [f"![{script}](img/{script}.png)", ""]
    page = docs / "benchmarks.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="scripts to run, e.g. store memoize (default: all)",
    )
    parser.add_argument("--from-json", type=Path, help="render saved results; run nothing")
    parser.add_argument("--docs", type=Path, default=DOCS, help="docs directory to write")
    parser.add_argument("--save-json", type=Path, help="keep the raw results here")
    args = parser.parse_args()
    failed: list[str] = []
    if args.from_json:
        results_file = args.from_json
    else:
        names = sorted(p.stem for p in HERE.glob("bench_*.py"))
        if args.only:
            names = [n for n in names if n.removeprefix("bench_") in args.only or n in args.only]
        results_file = args.save_json or Path(tempfile.mkstemp(suffix=".jsonl")[1])
        results_file.write_text("")
        failed = run_scripts(names, args.quick, results_file)
    page = write_report(load_results(results_file), args.docs, args.quick)
    print(f"wrote {page}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
