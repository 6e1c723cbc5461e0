"""Draw the benchmark tables as plots, from the results the benchmarks saved with ``--save-json``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_archive.py --size-mib 64 --repeat 1 \\
        --save-json benchmarks/results/bench_archive.json
    .venv/bin/python benchmarks/bench_hot_roundtrip.py --size-mib 64 --rounds 3 \\
        --save-json benchmarks/results/bench_hot_roundtrip.json
    .venv/bin/python benchmarks/plot_results.py --out plots/

The documentation build (``docs/conf.py``) runs it on ``benchmarks/results/`` and shows the
plots on the benchmarks page. Every number drawn comes from those files: nothing is typed in here.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
#: The cases of ``bench_archive.py`` whose tables compare every tool (one array of the full size).
BIG_CASES = ("big-random", "big-decimal")
#: The cases that compare zoblib with joblib and pickle on other kinds of objects.
OBJECT_CASES = ("mid-list", "many-small", "forest", "dataframe")


def _rows(document: dict[str, Any], case: str, operation: str) -> list[dict[str, Any]]:
    return [r for r in document["rows"] if r["case"] == case and r["operation"] == operation]


def _caption(document: dict[str, Any]) -> str:
    return f"{document['environment']} Arguments: {document['arguments']}."


def _save(figure: Any, out: Path, name: str, document: dict[str, Any]) -> Path:
    figure.text(0.01, 0.01, _caption(document), fontsize=6, color="0.4", wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    path = out / name
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_big_case(document: dict[str, Any], case: str, out: Path) -> Path:
    """Median time of ``dump`` and ``load`` of one big array, every tool, side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    tools = [r["tool"] for r in _rows(document, case, "dump")]
    for ax, operation in zip(axes, ("dump", "load"), strict=True):
        by_tool = {r["tool"]: r for r in _rows(document, case, operation)}
        seconds = [by_tool[t]["median_seconds"] * 1e3 if t in by_tool else 0.0 for t in tools]
        colors = ["tab:blue" if t.startswith("zoblib") else "tab:gray" for t in tools]
        ax.barh(tools, seconds, color=colors)
        for y, (tool, value) in enumerate(zip(tools, seconds, strict=True)):
            if tool not in by_tool:
                ax.text(0, y, "  (not measured)", va="center", fontsize=7, color="0.4")
            elif by_tool[tool]["file_nbytes"] is not None and operation == "dump":
                ratio = by_tool[tool]["file_nbytes"] / by_tool[tool]["data_nbytes"]
                ax.text(value, y, f" file {ratio:.2f}x", va="center", fontsize=7)
        ax.set_xlabel(f"{operation}: median time (ms)")
    axes[0].invert_yaxis()  # the first tool on top (the axes share theirs)
    size = _rows(document, case, "dump")[0]["data_nbytes"] / (1 << 20)
    axes[0].set_title(f"{case}: one float64 array of {size:.0f} MiB", loc="left")
    return _save(figure, out, f"archive-{case}.png", document)


def plot_vs_joblib(document: dict[str, Any], out: Path) -> Path:
    """zoblib's speed relative to joblib's (above 1: faster), per case and operation."""
    figure, ax = plt.subplots(figsize=(10, 4.2))
    cases = [c for c in (*BIG_CASES, *OBJECT_CASES) if _rows(document, c, "dump")]
    series = [("zoblib", "dump"), ("zoblib", "load"), ("zoblib c=3", "dump"), ("zoblib c=3", "load")]
    width = 0.8 / len(series)
    for index, (tool, operation) in enumerate(series):
        values = []
        for case in cases:
            found = [r for r in _rows(document, case, operation) if r["tool"] == tool]
            values.append(found[0]["vs_joblib"] if found and found[0]["vs_joblib"] else 0.0)
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(cases))]
        ax.bar(positions, values, width, label=f"{tool} {operation}")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(cases)), cases)
    ax.set_ylabel("speed relative to joblib (log)")
    ax.set_title("zoblib against joblib (compress=3 rows against joblib's compress=3)", loc="left")
    ax.legend(fontsize=8, ncols=2)
    return _save(figure, out, "archive-vs-joblib.png", document)


def plot_hot_roundtrip(document: dict[str, Any], out: Path) -> Path:
    """Every timed round of ``bench_hot_roundtrip.py``, per tool, dump and load."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    tools = list(dict.fromkeys(r["tool"] for r in document["rows"]))
    for ax, operation in zip(axes, ("dump", "load"), strict=True):
        for y, tool in enumerate(tools):
            times = [
                s * 1e3
                for r in document["rows"]
                if r["tool"] == tool and r["operation"] == operation
                for s in r["seconds"]
            ]
            ax.scatter(times, [y] * len(times), s=18, alpha=0.7)
            if times:
                ax.plot([sorted(times)[len(times) // 2]] * 2, [y - 0.3, y + 0.3], color="black")
        ax.set_yticks(range(len(tools)), tools)
        ax.set_xlabel(f"{operation}: time of each round (ms; bar: median)")
        ax.set_xlim(left=0)
    axes[0].invert_yaxis()
    arguments = document["arguments"]
    axes[0].set_title(
        f"one {arguments['data']} float64 array of {arguments['size_mib']} MiB, "
        f"compress={arguments['compress']}",
        loc="left",
    )
    return _save(figure, out, "hot-roundtrip.png", document)


def plot_all(results: Path, out: Path) -> list[Path]:
    """Every plot the saved results in ``results`` allow, written to ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    archive = results / "bench_archive.json"
    if archive.exists():
        document = json.loads(archive.read_text())
        written += [plot_big_case(document, c, out) for c in BIG_CASES if _rows(document, c, "dump")]
        written.append(plot_vs_joblib(document, out))
    roundtrip = results / "bench_hot_roundtrip.json"
    if roundtrip.exists():
        written.append(plot_hot_roundtrip(json.loads(roundtrip.read_text()), out))
    return written


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS), help="folder of the saved JSON results")
    parser.add_argument("--out", required=True, help="folder to write the PNG files to")
    args = parser.parse_args(argv)
    written = plot_all(Path(args.results), Path(args.out))
    for path in written:
        print(os.fspath(path))
    return written


if __name__ == "__main__":
    main()
