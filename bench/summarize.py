"""Prints the short table of a GPU check run against the targets: the fused step (>= 85% of the copy bandwidth at
B >= 256; >= 5x the eager reference and >= 1.25x torch.compile of it at every B from 16 to 512), the end-to-end
loop (bench_e2e.py: x the official-style loop, vs the floor, fraction of peak) and the gallery (bench_gallery.py:
>= 0.9x protect() on preloaded images).

    python bench/summarize.py bench/results/latest
"""
import csv
import json
import sys
from pathlib import Path

from common import read_measurements

BASELINES = ("reference", "eager_reference", "eager_stored_noise", "compiled_stored_noise", "compiled_reference",
             "copy")
COPY_TARGET = 0.85
EAGER_TARGET = 5.0
COMPILED_TARGET = 1.25


def ops_entries(rows: list[dict]) -> list[dict]:
    """ops.csv's long rows as one entry per (flags, implementation, batch, RNG contract): its metrics by name."""
    entries: dict[tuple, dict] = {}
    for row in rows:
        config = json.loads(row["config"])
        key = (config["flags"], row["provider"], int(row["x_value"]), config.get("rng_contract"))
        entry = entries.setdefault(key, {"flags": key[0], "impl": key[1], "batch": key[2]})
        entry[row["metric"]] = row["value"]
    return list(entries.values())


def print_rows(entries: list[dict]) -> None:
    print(f"{'flags':6} {'B':>4} {'impl':22} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'x eager':>8} {'x compiled':>10}")
    for entry in entries:
        if entry["impl"] == "copy":
            continue
        eager, compiled = (entry.get(f"speedup_vs_{name}") for name in ("eager_reference", "compiled_reference"))
        print(f"{entry['flags']:6} {entry['batch']:>4} {entry['impl']:22} {entry['time']:9.4f} "
              f"{entry['bandwidth']:8.1f} {entry['frac_of_copy'] * 100:5.1f}% "
              f"{'-' if eager is None else f'{eager:.3f}':>8} {'-' if compiled is None else f'{compiled:.3f}':>10}")


def target_lines(entries: list[dict]) -> list[str]:
    """One line per (flags, fast implementation): the worst value of each target over the batches it covers."""
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        if entry["impl"] not in BASELINES:
            groups.setdefault((entry["flags"], entry["impl"]), []).append(entry)
    for (flags, impl), group in groups.items():
        parts = []
        large = [e["frac_of_copy"] for e in group if e["batch"] >= 256]
        if large:
            worst = min(large)
            parts.append(f"copy {worst:.0%} at B>=256 ({'met' if worst >= COPY_TARGET else 'NOT met'})")
        ranged = [e for e in group if 16 <= e["batch"] <= 512]
        for key, target, label in (("speedup_vs_eager_reference", EAGER_TARGET, "eager"),
                                   ("speedup_vs_compiled_reference", COMPILED_TARGET, "compiled")):
            values = [e[key] for e in ranged if key in e]
            if values:
                worst = min(values)
                parts.append(f"{worst:.2f}x {label} at B 16-512 ({'met' if worst >= target else 'NOT met'})")
        lines.append(f"{flags:6} {impl:22} " + "; ".join(parts or ["no batch in the target ranges"]))
    return lines


E2E_TARGETS = {  # model -> (x official on a GPU, on a CPU)
    "agw_r50_nl": (7.0, None), "osnet_x0_25": (10.0, 3.0)}
FLOOR_SLACK = 1.03  # within 3% of the same-precision floor at batch >= 64
GALLERY_TARGET = 0.9


def e2e_lines(rows: list[dict]) -> list[str]:
    """Per model: the best of our rows against the official-style loop and the floor."""
    lines = []
    ours = [r for r in rows if r["impl"].startswith("ours_") and r.get("ms_per_image")]
    for model in dict.fromkeys(r["model"] for r in ours):
        mine = [r for r in ours if r["model"] == model]
        on_cuda = "cpu:" not in mine[0]["device"]
        best = max(mine, key=lambda r: float(r.get("x_official") or 0))
        target = E2E_TARGETS.get(model, (None, None))[0 if on_cuda else 1]
        text = f"{model:12s} best {best['impl']} B={best['batch']}: {float(best['ms_per_image']):.1f} ms/img, " \
               f"{best.get('x_official', '-')}x official"
        if target and best.get("x_official"):
            text += f" (target {target}x: {'met' if float(best['x_official']) >= target else 'NOT met'})"
        folded = [r for r in mine if ("fold" in r["impl"] or "compile" in r["impl"]) and r.get("vs_floor")]
        if folded:
            lowest = min(folded, key=lambda r: float(r["vs_floor"]))
            text += f"; {lowest['impl']} B={lowest['batch']} at {lowest['vs_floor']}x the eager floor " \
                    f"({'met' if float(lowest['vs_floor']) <= 1.0 else 'NOT met'}: <= 1)"
        if on_cuda:
            large = [r for r in mine if int(r["batch"]) >= 64 and r.get("vs_floor")]
            if large:
                worst = max(min((r for r in large if int(r["batch"]) == b), key=lambda r: float(r["vs_floor"]))
                            for b in {int(r["batch"]) for r in large})
                text += f"; closest to floor at B>=64 (worst batch): {worst['vs_floor']}x " \
                        f"({'met' if float(worst['vs_floor']) <= FLOOR_SLACK else 'NOT met'}: <= {FLOOR_SLACK})"
            peaks = [float(r["frac_of_peak"]) for r in mine if r.get("frac_of_peak")]
            if peaks:
                text += f"; best {max(peaks):.1%} of peak"
        lines.append(text)
    return lines


def main(folder: str) -> int:
    root = Path(folder)
    ops = root / "ops.csv"
    if ops.exists():
        rows = read_measurements(ops)
        if rows:
            print(f"{rows[0]['device']} | torch {rows[0]['torch']} | triton {rows[0]['triton']} | {rows[0]['date']}")
        entries = ops_entries(rows)
        print_rows(entries)
        print("\nfused step targets (worst over the batch sizes each covers):")
        for line in target_lines(entries):
            print("  " + line)
    else:
        print(f"no {ops}")
    e2e = root / "e2e.csv"
    if e2e.exists():
        print("\nend to end (bench_e2e.py):")
        for line in e2e_lines(list(csv.DictReader(open(e2e)))):
            print("  " + line)
    gallery = root / "gallery.csv"
    if gallery.exists():
        values = {(row["provider"], row["metric"]): row["value"] for row in read_measurements(gallery)}
        ratio = values["pixelfade_protect", "speedup_vs_protect"]
        print(f"\ngallery: pixelfade protect {values['pixelfade_protect', 'throughput']:.3f} img/s vs protect() "
              f"{values['protect', 'throughput']:.3f} img/s = {ratio:.2f}x "
              f"({'met' if ratio >= GALLERY_TARGET else 'NOT met'}: >= {GALLERY_TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"))
