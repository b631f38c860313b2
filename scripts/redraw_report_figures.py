"""Redraw a report's matplotlib figures (privacy_utility.png, ad_vs_recovery.png) from its report.json.

    python scripts/redraw_report_figures.py docs/results/cuhk01/report.json --out /tmp/cuhk01_figures
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pixelfade_fast.evaluation.report import report_figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a report.json written by pixelfade evaluate")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    args = parser.parse_args(argv)
    try:
        payload = json.loads(args.report.read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        paths = report_figures(payload, args.out)
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"error: cannot redraw from {args.report}: {error!r}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
