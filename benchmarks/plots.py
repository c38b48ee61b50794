"""Draw the benchmark plots of docs/benchmarks.md from benchmarks/results/figures.json.

    python3 benchmarks/plots.py                 # writes docs/img/*.png
    python3 benchmarks/plots.py --out /tmp/img  # somewhere else

The figures are copied from the benchmark scripts' recorded output (each section of the JSON
file names its script and run); this script only draws them, so the plots never drift from
the tables. Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, same output on every machine
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "results" / "figures.json"
OUT = HERE.parent / "docs" / "img"
SEAWALL, PEER, HANDBOOK = "#1f6fb2", "#9aa5b1", "#d4d9de"


def colour(label: str, run: str = "same") -> str:
    """seawall in blue, peers from the same run in grey, handbook peers lighter."""
    if label.startswith("seawall"):
        return SEAWALL
    return PEER if run == "same" else HANDBOOK


def save(fig: Any, out: Path, name: str) -> Path:
    """Write one PNG with a fixed size and resolution."""
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def limiter_accuracy(data: dict[str, Any], out: Path) -> Path:
    """Two panels: grants against the ideal, and the most grants seen in any 1 s window."""
    rows = data["rows"]
    labels = [r["limiter"] + ("" if r["run"] == "same" else " *") for r in rows]
    colours = [colour(r["limiter"], r["run"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
    left.barh(labels, [r["grants_to_ideal"] for r in rows], color=colours)
    left.axvline(1.0, color="black", linewidth=1)
    left.set_xlabel("grants / ideal (1.0 is exact)")
    right.barh(labels, [r["max_in_1s"] for r in rows], color=colours)
    right.axvline(data["allowed_per_second"], color="#c0392b", linewidth=1)
    right.set_xlabel(f"most grants in any 1 s (red: {data['allowed_per_second']} allowed)")
    left.invert_yaxis()
    fig.suptitle("Rate limiter accuracy: 100/s, burst 10, 50 tasks, 5 s (* handbook run)")
    return save(fig, out, "limiter-accuracy.png")


def asgi_throughput(data: dict[str, Any], out: Path) -> Path:
    """Requests/s and server CPU per request, each as a ratio to bare Starlette."""
    rows = data["rows"]
    labels = [r["variant"] for r in rows]
    colours = [colour(r["variant"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    left.barh(labels, [r["throughput_x_bare"] for r in rows], color=colours)
    left.axvline(1.0, color="black", linewidth=1)
    left.set_xlabel("requests/s, x bare Starlette (higher is better)")
    right.barh(labels, [r["cpu_x_bare"] for r in rows], color=colours)
    right.axvline(1.0, color="black", linewidth=1)
    right.set_xlabel("server CPU per request, x bare (lower is better)")
    left.invert_yaxis()
    fig.suptitle("ASGI middleware under uvicorn + wrk (bare Starlette = 1.0)")
    return save(fig, out, "asgi-throughput.png")


def httpx_throughput(data: dict[str, Any], out: Path) -> Path:
    """Requests per CPU second through MockTransport, as a ratio to the plain transport."""
    rows = data["rows"]
    labels = [r["variant"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    height = 0.38
    ys = range(len(rows))
    ax.barh([y - height / 2 for y in ys], [r["sync"] for r in rows], height, label="sync")
    ax.barh([y + height / 2 for y in ys], [r["async"] for r in rows], height, label="async")
    ax.set_yticks(list(ys), labels)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("requests per CPU second, x plain transport")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title("httpx transport overhead (MockTransport)")
    return save(fig, out, "httpx-throughput.png")


def adaptive_shedding(data: dict[str, Any], out: Path) -> Path:
    """Two panels by load: goodput per variant, and the share of critical requests served."""
    rows = data["rows"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    loads = sorted({r["load"] for r in rows})
    width = 0.8 / len(variants)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for i, variant in enumerate(variants):
        xs = [x + (i - (len(variants) - 1) / 2) * width for x in range(len(loads))]
        by_load = {r["load"]: r for r in rows if r["variant"] == variant}
        shade = _SHADES.get(variant, PEER)
        left.bar(xs, [by_load[load]["goodput"] for load in loads], width, color=shade)
        served = [100 * (by_load[load]["critical_served"] or 0) for load in loads]
        right.bar(xs, served, width, label=variant, color=shade)
    for ax in (left, right):
        ax.set_xticks(range(len(loads)), [f"{load:g}x" for load in loads])
        ax.set_xlabel("offered load (x capacity)")
    left.axhline(data["capacity"], color="black", linewidth=1)
    left.set_ylabel(f"goodput (200 within {data['slo']} s) per s")
    right.set_ylabel("critical requests served (%)")
    right.set_ylim(0, 105)
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Load shedding: {data['setting']}", fontsize=9)
    return save(fig, out, "adaptive-shedding.png")


#: seawall's adaptive limit in blue, fixed limits in greys and tints, no limit in dark grey.
_SHADES = {
    "none": "#4d4d4d",
    "fixed-8": "#9aa5b1",
    "fixed-32": "#d4d9de",
    "priority-8": "#7fb3e0",
    "auto": SEAWALL,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="directory for the PNG files")
    args = parser.parse_args()
    figures = json.loads(FIGURES.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    for draw, key in (
        (limiter_accuracy, "limiter_accuracy"),
        (asgi_throughput, "asgi_throughput"),
        (httpx_throughput, "httpx_throughput"),
        (adaptive_shedding, "adaptive_shedding"),
    ):
        print(draw(figures[key], args.out))


if __name__ == "__main__":
    main()
