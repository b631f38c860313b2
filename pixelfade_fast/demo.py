"""`make demo`: the main job end to end on the bundled default, in a few minutes on 2 CPU cores.

Generates a small SynthPed split, protects its query and gallery with the bundled OSNet-x0.25 (trained on
SynthPed only), runs the four Re-ID settings, a short recovery attack (the ``demo`` preset) with its floor, two
baselines (mosaic, blur), writes demo_out/report/{report.md, report.json, grid.png, privacy_utility.png,
ad_vs_recovery.png} and prints the headline (best-of-attackers leakage) and the attack verdict.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .data import generate_synthped, read_market1501
from .evaluation.attack_settings import attack_preset
from .evaluation.report import headline_table, verdict_text, write_report
from .evaluation.suite import SuiteSettings, run_suite
from .models.spec import BUNDLED, load_model_spec
from .training.demo import DEMO_SYNTHPED

# The bundled model's SynthPed world (seed 2024: the same two cameras) with identities it never saw: it trained on
# pids 1-100 (101-200 were its test split), so the demo's query/gallery are pids 201-220. The attacker's
# training pairs come from pids 1-200 (public data, as in the paper's threat model).
DEMO_EVAL_SYNTHPED = dict(num_ids_train=200, num_ids_test=20, images_per_id_per_cam=1, num_cams=2, size=(128, 64),
                          seed=DEMO_SYNTHPED["seed"], queries_per_id_per_cam=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--attack-epochs", type=int, help="override the demo attack preset's epochs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data_dir = args.out / "synthped"
    if not (data_dir / "query").is_dir():
        print(f"generating SynthPed into {data_dir}", file=sys.stderr)
        generate_synthped(data_dir, **DEMO_EVAL_SYNTHPED)
    split = read_market1501(data_dir)
    if not BUNDLED["osnet_x0_25"].exists():
        print(f"error: bundled weights {BUNDLED['osnet_x0_25']} are missing (scripts/train_demo_model.py makes them)")
        return 1
    model = load_model_spec("osnet_x0_25").to(args.device)
    try:
        attack = attack_preset("demo", **({} if args.attack_epochs is None else {"epochs": args.attack_epochs}))
    except ValueError as error:
        print(f"error: {error}")
        return 1
    settings = SuiteSettings(methods=("pixelfade", "mosaic", "blur"), attack=attack, known_noise=False)
    result = run_suite(model, split, settings, dataset="SynthPed (demo split)")
    command = "make demo  (python -m pixelfade_fast.demo)"
    report = write_report(result, args.out / "report", command)
    print(headline_table(result))
    print(f"\nattack floor: PSNR {result.floor['psnr']:.2f} dB, SSIM {result.floor['ssim']:.3f}; leakage is the best "
          f"of the trained U-Net, the protected image and the mean image, minus the floor")
    print(verdict_text(result))
    print(f"report: {report} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
