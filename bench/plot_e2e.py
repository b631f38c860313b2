"""The figure of bench_e2e.py: per case, ms per image for T steps of each loop (median, 20-80% bar), log scale.

    python bench/plot_e2e.py bench/results/e2e_cpu.csv docs/figures/e2e_cpu.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_measurements  # noqa: E402

COLOURS = {"official_loop": "black", "floor_nchw": "grey", "floor_nhwc": "silver", "protect_default": "tab:blue",
           "protect_tuned": "tab:green"}


def plot_e2e(rows: list[dict], path: Path) -> None:
    rows = [r for r in rows if r["metric"] == "time_per_image"]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    if not cases:
        print(f"no time_per_image rows: {path} not drawn")
        return
    figure, axes = plt.subplots(1, len(cases), figsize=(3.6 * len(cases), 4.2), squeeze=False)
    for axis, case in zip(axes[0], cases):
        mine = [r for r in rows if r["case"] == case]
        labels = [f"{r['provider']}\nb{r['x_value']}" for r in mine]
        values = [float(r["value"]) for r in mine]
        low = [v - float(r["value_p20"] or v) for v, r in zip(values, mine)]
        high = [float(r["value_p80"] or v) - v for v, r in zip(values, mine)]
        axis.bar(range(len(mine)), values, yerr=[low, high], capsize=3,
                 color=[COLOURS.get(r["provider"], "tab:orange") for r in mine])
        axis.set_xticks(range(len(mine)), labels, rotation=60, ha="right", fontsize=7)
        axis.set_yscale("log")
        axis.set_ylabel("ms per image, 100 steps")
        axis.set_title(f"{case}\n{mine[0]['cpu_model'][:32]}, {mine[0]['threads']} threads", fontsize=8)
        axis.grid(True, axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    plot_e2e(read_measurements(Path(sys.argv[1])), Path(sys.argv[2]))
