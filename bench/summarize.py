"""Prints the short table of a GPU check run: per batch, each implementation's time, bandwidth and speed-ups,
then each fast implementation against the issue's targets (>= 85% of the copy bandwidth at B >= 256; >= 5x the
eager reference and >= 1.25x torch.compile of it at every B from 16 to 512).

    python bench/summarize.py bench/results/latest
"""
import csv
import sys
from pathlib import Path

BASELINES = ("reference", "eager_reference", "eager_stored_noise", "compiled_stored_noise", "compiled_reference",
             "copy")
COPY_TARGET = 0.85
EAGER_TARGET = 5.0
COMPILED_TARGET = 1.25


def print_rows(rows: list[dict]) -> None:
    print(f"{'flags':6} {'B':>4} {'impl':22} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'x eager':>8} {'x compiled':>10}")
    for row in rows:
        if row["impl"] == "copy":
            continue
        eager = row.get("speedup_vs_eager_reference") or "-"
        compiled = row.get("speedup_vs_compiled_reference") or "-"
        print(f"{row.get('flags', 'co_pro'):6} {row['batch']:>4} {row['impl']:22} {float(row['time_ms']):9.4f} "
              f"{float(row['gbps']):8.1f} {float(row['frac_of_copy']) * 100:5.1f}% {eager:>8} {compiled:>10}")


def target_lines(rows: list[dict]) -> list[str]:
    """One line per (flags, fast implementation): the worst value of each target over the batches it covers."""
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["impl"] not in BASELINES:
            groups.setdefault((row.get("flags", "co_pro"), row["impl"]), []).append(row)
    for (flags, impl), group in groups.items():
        parts = []
        large = [float(r["frac_of_copy"]) for r in group if int(r["batch"]) >= 256]
        if large:
            worst = min(large)
            parts.append(f"copy {worst:.0%} at B>=256 ({'met' if worst >= COPY_TARGET else 'NOT met'})")
        ranged = [r for r in group if 16 <= int(r["batch"]) <= 512]
        for key, target, label in (("speedup_vs_eager_reference", EAGER_TARGET, "eager"),
                                   ("speedup_vs_compiled_reference", COMPILED_TARGET, "compiled")):
            values = [float(r[key]) for r in ranged if r.get(key)]
            if values:
                worst = min(values)
                parts.append(f"{worst:.2f}x {label} at B 16-512 ({'met' if worst >= target else 'NOT met'})")
        lines.append(f"{flags:6} {impl:22} " + "; ".join(parts or ["no batch in the target ranges"]))
    return lines


def main(folder: str) -> int:
    root = Path(folder)
    ops = root / "ops.csv"
    if not ops.exists():
        print(f"no {ops}")
        return 1
    rows = list(csv.DictReader(open(ops)))
    if rows:
        print(f"{rows[0]['device']} | torch {rows[0]['torch']} | triton {rows[0]['triton']} | {rows[0]['date']}")
    print_rows(rows)
    print("\ntargets (worst over the batch sizes each covers):")
    for line in target_lines(rows):
        print("  " + line)
    protect = root / "protect.csv"
    if protect.exists():
        print()
        for row in csv.DictReader(open(protect)):
            print("  ".join(f"{k}={v}" for k, v in row.items() if k not in ("device", "torch", "triton", "date")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"))
