"""Reproduce docs/results/text_to_image/ and docs/results/visible_infrared/ (paper Tables 5 and 6 on SynthPed).

    python scripts/scenario_reports.py [--data-dir runs/synthped_scenarios] [--tasks t2i vi] [--out-dir docs/results]

Generates the evaluation split (the bundled models' SynthPed world, seed 2024, with 50 identities none of the
models saw: pids 201-250; pids 1-200 are the attacker's public training data) unless DATA_DIR already holds
it, then runs `pixelfade evaluate --task t2i` (30 of them) and `--task vi` (20 of them; seeded choices) with the
bundled models, the `strong` recovery attack (the reports' preset) and the sizes below, on one torch thread.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from pixelfade_fast import cli
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.training.scenarios import SCENARIO_SYNTHPED

EVAL_SYNTHPED = {**SCENARIO_SYNTHPED, "num_ids_train": 200, "num_ids_test": 50, "images_per_id_per_cam": 1}
# Sized for a shared 2-core CPU: 30 (t2i) and 20 (vi: twice the gallery images per identity) of the 50 identities,
# and 200 attacker pairs (every method protects each of them first).
SIZES = {"t2i": ["--max-test-ids", "30", "--max-attack-train", "200"],
         "vi": ["--max-test-ids", "20", "--max-attack-train", "200"]}
OUT = {"t2i": "text_to_image", "vi": "visible_infrared"}
NAMES = {"t2i": "SynthPed (seed 2024, 30 unseen identities, captions)",
         "vi": "SynthPed (seed 2024, 20 unseen identities, 2 visible + 2 infrared cameras)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="runs/synthped_scenarios")
    parser.add_argument("--tasks", nargs="+", choices=("t2i", "vi"), default=["t2i", "vi"])
    parser.add_argument("--out-dir", type=Path, default=Path("docs/results"), help="one report folder per task inside")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir)
    if not (data_dir / "query").is_dir():
        print(f"generating {EVAL_SYNTHPED} into {data_dir}", file=sys.stderr, flush=True)
        generate_synthped(data_dir, **EVAL_SYNTHPED)
    for task in args.tasks:
        started = time.perf_counter()
        code = cli.main(["evaluate", "--task", task, "--data", "synthped", "--root", str(data_dir), "--name",
                         NAMES[task], *SIZES[task], "--device", args.device, "--out", str(args.out_dir / OUT[task])])
        print(f"{task}: {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
