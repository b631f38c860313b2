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
    print(f"{'B':>4} {'impl':24} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'x eager':>8} {'x stored':>8} {'x compiled':>10}")
    for row in rows:
        if row["impl"] == "copy":
            continue
        print(f"{row['batch']:>4} {row['impl']:24} {float(row['time_ms']):9.4f} {float(row['gbps']):8.1f} "
              f"{float(row['frac_of_copy']) * 100:5.1f}% {row.get('speedup_vs_eager_reference') or '-':>8} "
              f"{row.get('speedup_vs_eager_stored_noise') or '-':>8} {row.get('speedup_vs_compiled_stored_noise') or '-':>10}")
    protect = root / "protect.csv"
    if protect.exists():
        print()
        for row in csv.DictReader(open(protect)):
            print("  ".join(f"{k}={v}" for k, v in row.items() if k not in ("device", "torch", "triton", "date")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"))
