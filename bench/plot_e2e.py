"""The figure of bench_e2e.py: ms per image (T steps) against batch size, one panel per model, log scale.

    python bench/plot_e2e.py bench/results/e2e_cpu.csv docs/figures/e2e_cpu.png
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_e2e(rows: list[dict], path: Path) -> None:
    rows = [r for r in rows if r.get("ms_per_image") not in (None, "")]
    models = list(dict.fromkeys(r["model"] for r in rows))
    figure, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False)
    for axis, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        for impl in dict.fromkeys(r["impl"] for r in mine):
            points = sorted((int(r["batch"]), float(r["ms_per_image"])) for r in mine if r["impl"] == impl)
            style = {"official": dict(color="black", marker="s", linestyle="--"),
                     "floor_fp32": dict(color="grey", marker="v", linestyle=":"),
                     "floor_bf16": dict(color="grey", marker="^", linestyle="-.")}.get(impl, dict(marker="o"))
            axis.plot([p[0] for p in points], [p[1] for p in points], label=impl, **style)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel(f"ms per image, {mine[0]['steps']} steps")
        axis.set_title(f"{model} ({mine[0]['input_size']}, {mine[0]['device']})", fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    plot_e2e(list(csv.DictReader(open(sys.argv[1]))), Path(sys.argv[2]))
