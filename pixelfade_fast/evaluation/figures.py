"""The report's plots with matplotlib (Agg canvas, no display): privacy–utility, AD vs recovery (paper Fig. 1(a))
and the parameter analysis (paper Fig. 5).

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas rather than through pyplot, so nothing
global changes and no display is needed. Point labels are placed by adjustText (it moves them off each other and
off the points, with a leader line back to each point).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from adjustText import adjust_text
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .sweep import SWEEP_PARAMETERS

DPI = 150
POINT_COLOUR = "tab:red"
FLOOR_STYLE = dict(color="0.45", linestyle="--", linewidth=1.0)


def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def _pad_limits(values: list[float], pad: float, low: float | None = None, high: float | None = None):
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1e-3)
    lo, hi = lo - pad * span, hi + pad * span
    return (lo if low is None else max(low, lo)), (hi if high is None else min(high, hi))


def _labelled_scatter(axes, points: dict[str, tuple[float, float]]) -> list:
    """Dots with their names; returns the label Text objects (placed off each other and off the dots)."""
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    axes.scatter(xs, ys, s=36, color=POINT_COLOUR, zorder=3)
    texts = [axes.text(x, y, name, fontsize=8) for name, (x, y) in points.items()]
    adjust_text(texts, x=xs, y=ys, ax=axes, expand=(1.3, 1.6), ensure_inside_axes=True,
                arrowprops=dict(arrowstyle="-", color="0.5", linewidth=0.6))
    return texts


def privacy_utility_figure(points: dict[str, tuple[float, float]], path: Path, *, floor_ssim: float | None = None,
                           title: str = "") -> Path:
    """Scatter of methods: x = recovery SSIM of the best attacker (lower is more private), y = p→p mAP (%).

    points: method -> (recovery SSIM, mAP in [0, 1]). floor_ssim draws the information-free floor.
    """
    if not points:
        raise ValueError("privacy_utility_figure needs at least one method")
    figure = _new_figure((6.4, 4.6))
    axes = figure.add_subplot()
    scaled = {name: (x, 100.0 * y) for name, (x, y) in points.items()}
    xs = [p[0] for p in scaled.values()] + ([floor_ssim] if floor_ssim is not None else [])
    axes.set_xlim(*_pad_limits(xs, 0.15))
    axes.set_ylim(*_pad_limits([p[1] for p in scaled.values()], 0.15, low=0.0))
    if floor_ssim is not None:
        axes.axvline(floor_ssim, label=f"floor (no information): SSIM {floor_ssim:.3f}", **FLOOR_STYLE)
        axes.legend(loc="best", fontsize=8)
    _labelled_scatter(axes, scaled)
    axes.set_xlabel("privacy: recovery SSIM, best attacker (lower is more private)")
    axes.set_ylabel("utility: protected→protected mAP (%)")
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title, fontsize=9)
    return _save(figure, path)


def ad_recovery_figure(points: dict[str, tuple[float, float]], path: Path, *, floor_ssim: float | None = None,
                       sample_size: int | None = None, title: str = "") -> Path:
    """Paper Fig. 1(a): Anderson–Darling A² of the protected images (log x) against recovery SSIM (y).

    points: method -> (mean A², recovery SSIM of the best attacker). A² must be positive (log axis).
    """
    if not points:
        raise ValueError("ad_recovery_figure needs at least one method")
    bad = {name: p[0] for name, p in points.items() if not p[0] > 0}
    if bad:
        raise ValueError(f"A² must be positive for a log axis, got {bad}")
    figure = _new_figure((6.4, 4.6))
    axes = figure.add_subplot()
    axes.set_xscale("log")
    xs = [p[0] for p in points.values()]
    axes.set_xlim(min(xs) / 2.0, max(xs) * 2.0)
    ys = [p[1] for p in points.values()] + ([floor_ssim] if floor_ssim is not None else [])
    axes.set_ylim(*_pad_limits(ys, 0.15))
    if floor_ssim is not None:
        axes.axhline(floor_ssim, label=f"floor (no information): SSIM {floor_ssim:.3f}", **FLOOR_STYLE)
        axes.legend(loc="best", fontsize=8)
    _labelled_scatter(axes, points)
    n = f"\n(n = {sample_size} values per image; lower is closer to a normal sample)" if sample_size else ""
    axes.set_xlabel(f"Anderson–Darling A² of the protected image, log scale{n}")
    axes.set_ylabel("recovery SSIM, best attacker")
    axes.grid(alpha=0.3, which="both")
    if title:
        axes.set_title(title, fontsize=9)
    return _save(figure, path)


def _as_float(row: dict, key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"sweep row {row!r} has no numeric {key!r}")


def parameter_sweep_figure(rows: Iterable[dict], path: Path, *, title: str = "") -> Path:
    """Paper Fig. 5: four panels (T, β, ε, I), each with p→p mAP (left axis) and recovery SSIM (right axis)
    against the swept value; the default value is marked. rows: the sweep CSV's rows (sweep.SWEEP_COLUMNS)."""
    rows = list(rows)
    by_parameter: dict[str, list[dict]] = {}
    for row in rows:
        by_parameter.setdefault(str(row.get("parameter")), []).append(row)
    missing = [name for name in SWEEP_PARAMETERS if name not in by_parameter]
    if missing:
        raise ValueError(f"sweep rows lack the parameters {missing} (have {sorted(by_parameter)})")
    figure = _new_figure((9.6, 6.8))
    grid = figure.subplots(2, 2)
    for axes, (name, label), letter in zip(grid.flat, SWEEP_PARAMETERS.items(), "abcd"):
        panel = sorted(by_parameter[name], key=lambda r: _as_float(r, "value"))
        values = [_as_float(r, "value") for r in panel]
        maps = [100.0 * _as_float(r, "map") for r in panel]
        ssims = [_as_float(r, "recovery_ssim") for r in panel]
        left = axes.plot(values, maps, "o-", color="tab:blue", label="p→p mAP (%)")
        axes.set_ylabel("p→p mAP (%)", color="tab:blue")
        axes.tick_params(axis="y", labelcolor="tab:blue")
        axes.set_ylim(*_pad_limits(maps, 0.3, low=0.0, high=100.0))
        right_axes = axes.twinx()
        right = right_axes.plot(values, ssims, "s--", color="tab:red", label="recovery SSIM")
        right_axes.set_ylabel("recovery SSIM", color="tab:red")
        right_axes.tick_params(axis="y", labelcolor="tab:red")
        floor = max(_as_float(r, "floor_ssim") for r in panel)  # one floor per sweep; max if rows were merged
        right_axes.set_ylim(*_pad_limits(ssims + [floor], 0.3, low=0.0, high=1.0))
        floor_line = right_axes.axhline(floor, **FLOOR_STYLE)
        defaults = [v for v, r in zip(values, panel) if str(r.get("is_default")).lower() in ("1", "true")]
        for value in defaults:
            axes.axvline(value, color="0.3", linestyle=":", linewidth=1.0)
        axes.set_xlabel(label + ("  (dotted: default)" if defaults else ""))
        axes.set_title(f"({letter}) {label}", fontsize=9)
        axes.grid(alpha=0.3)
        if letter == "a":
            axes.legend(left + right + [floor_line], ["p→p mAP (%)", "recovery SSIM (best attacker)",
                                                      "SSIM floor (no information)"], loc="lower right", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def recoveries_figure(rows: dict[str, dict[str, tuple]], path: Path, *, title: str = "") -> Path:
    """One panel per method (row) and attacker (column): the first images that attacker recovered, side by side,
    captioned with its PSNR / SSIM; the best-of winner's caption is bold.

    rows: method -> column label -> (images [k, 3, H, W] in [0, 1], caption, is_winner). Columns are the union in
    order of first appearance; a method without a column leaves that panel empty.
    """
    if not rows:
        raise ValueError("recoveries_figure needs at least one method")
    columns = list(dict.fromkeys(label for cells in rows.values() for label in cells))
    first = next(iter(next(iter(rows.values())).values()))[0]
    count, _, height, width = first.shape
    aspect = count * width / height
    figure = _new_figure((1.2 + 1.5 * aspect * len(columns), 0.6 + 1.9 * len(rows)))
    grid = figure.subplots(len(rows), len(columns), squeeze=False)
    for row, (method, cells) in enumerate(rows.items()):
        for col, label in enumerate(columns):
            axes = grid[row][col]
            axes.set_xticks([])
            axes.set_yticks([])
            if col == 0:
                axes.set_ylabel(method, fontsize=8)
            if row == 0:
                axes.set_title(label, fontsize=8)
            if label not in cells:  # an empty panel: no frame, but the row keeps its method's label
                for spine in axes.spines.values():
                    spine.set_visible(False)
                continue
            images, caption, winner = cells[label]
            strip = images.clamp(0, 1).permute(2, 0, 3, 1).reshape(height, -1, 3).numpy()
            axes.imshow(strip, interpolation="nearest")
            axes.set_xlabel(caption, fontsize=7, fontweight="bold" if winner else "normal")
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, path)
