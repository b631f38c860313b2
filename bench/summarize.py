"""Prints the short table of a GPU check run: per batch, each implementation's time, bandwidth and speed-ups.

    python bench/summarize.py bench/results/latest
"""
import csv
import sys
from pathlib import Path


def main(folder: str) -> int:
    root = Path(folder)
    ops = root / "ops.csv"
    if not ops.exists():
        print(f"no {ops}")
        return 1
    rows = list(csv.DictReader(open(ops)))
    if rows:
        print(f"{rows[0]['device']} | torch {rows[0]['torch']} | triton {rows[0]['triton']} | {rows[0]['date']}")
    print(f"{'flags':6} {'B':>4} {'impl':22} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'x eager':>8} {'x compiled':>10}")
    for row in rows:
        if row["impl"] == "copy":
            continue
        print(f"{row.get('flags', 'co_pro'):6} {row['batch']:>4} {row['impl']:22} {float(row['time_ms']):9.4f} "
              f"{float(row['gbps']):8.1f} {float(row['frac_of_copy']) * 100:5.1f}% "
              f"{row.get('speedup_vs_eager_reference') or '-':>8} {row.get('speedup_vs_compiled_reference') or '-':>10}")
    protect = root / "protect.csv"
    if protect.exists():
        print()
        for row in csv.DictReader(open(protect)):
            print("  ".join(f"{k}={v}" for k, v in row.items() if k not in ("device", "torch", "triton", "date")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"))
