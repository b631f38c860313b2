"""Does PixelFade meet ε for every image, in how many steps, and what does it cost Re-ID? Per model and config.

For the first --test-ids test identities of CUHK01 (their query and gallery images, all protected), each
configuration of CONFIGS gives: the met-ε rate, the mean and largest number of steps an image was worked on
(T, plus the finish steps in which it still took a CO step), the median final loss and ε, protected→protected
mAP over the clean→clean mAP of the same images (mAP kept), the mean PSNR of the protected image to the original
(lower hides more), and seconds per image.

    python bench/bench_constraint.py --root ../shared/data/cuhk01 --test-ids 32 \\
        --model osnet_x0_25 --model osnet_x0_25:runs/cuhk01_256x128/osnet_x0_25_cuhk01.safetensors \\
        --out bench/results/constraint_cuhk01_cpu.csv

A --model is any `pixelfade protect --model` spec; the bare zoo name is the bundled SynthPed model. Rows
(bench/common.py's long format, bench `constraint`): case = the model spec, provider = the configuration's name,
one row per metric of METRICS; the config column holds the image count, is_default, the rise tolerance, the batch
and the seed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast import data
from pixelfade_fast.engine import StepRecord, extract_features
from pixelfade_fast.evaluation.reid_metrics import evaluate_reid
from pixelfade_fast.models.spec import load_model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402

# Named by what they are, not by which one is the default: the row of the default config says so (is_default).
CONFIGS = {
    "paper: T=100, fixed beta, absolute eps": pf.FadeConfig(finish_steps=0, co_step="fixed", epsilon_scale="absolute"),
    "absolute eps 0.03 + backtrack + 50 finish": pf.FadeConfig(epsilon_scale="absolute"),
    "relative eps 0.015 + backtrack + 50 finish": pf.FadeConfig(epsilon=0.015),
    "relative eps 0.03 + backtrack + 50 finish": pf.FadeConfig(epsilon=0.03),
    "relative eps 0.03 + backtrack + 100 finish": pf.FadeConfig(epsilon=0.03, finish_steps=100),
}


# The long-format rows of a (model, configuration): metric -> unit.
METRICS = {"met_rate": "fraction", "mean_steps": "steps", "max_steps": "steps", "median_final_loss": "loss",
           "median_epsilon": "loss", "s_per_image": "s", "mAP_clean": "mAP", "mAP_protected": "mAP",
           "mAP_kept": "fraction", "psnr_to_original": "dB"}


class StepCounter:
    """An engine observer counting, per image of one batch, the steps it was worked on: every step of T, plus
    each finish step in which it took a CO step (compacted batches name their images in ``record.rows``)."""

    def __init__(self, batch: int, config: pf.FadeConfig) -> None:
        self.finish_steps = torch.zeros(batch, dtype=torch.int64)
        self.config = config

    def __call__(self, record: StepRecord) -> None:
        if record.step < self.config.steps:
            return
        do_co = record.flags.do_co  # stays on the device: no host synchronisation in the loop
        self.finish_steps = self.finish_steps.to(do_co.device)
        took = torch.zeros_like(self.finish_steps, dtype=torch.bool)
        rows = record.rows if record.rows is not None else torch.arange(do_co.numel(), device=do_co.device)
        took.index_put_((rows,), do_co)  # padding repeats a row with its own flag: no double count
        self.finish_steps += took

    @property
    def steps(self) -> torch.Tensor:
        return self.config.steps + self.finish_steps.cpu()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a - b).square().flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


def first_test_ids(split, count: int) -> tuple[list, list]:
    """The query and gallery records of the split's first ``count`` test identities (by pid)."""
    ids = sorted({r.pid for r in split.query})[:count]
    return [r for r in split.query if r.pid in ids], [r for r in split.gallery if r.pid in ids]


def query_gallery_map(features: torch.Tensor, query: list, gallery: list) -> float:
    """mAP of the first len(query) rows of ``features`` (the query records') against the rest (the gallery's)."""
    n = len(query)
    return evaluate_reid(features[:n], [r.pid for r in query], [r.camid for r in query], features[n:],
                         [r.pid for r in gallery], [r.camid for r in gallery])["mAP"]


def protect_in_batches(model, images: torch.Tensor, config: pf.FadeConfig, batch: int, seed: int) -> dict:
    """Protect ``images`` in batches of ``batch`` (uids = their index) and gather, per image, the protected image,
    final loss, ε, whether it met ε and the steps it was worked on; plus the seconds it all took."""
    gathered = {"protected": [], "final_loss": [], "epsilon": [], "met": [], "steps": []}
    begin = time.perf_counter()
    for start in range(0, images.shape[0], batch):
        chunk = images[start:start + batch]
        counter = StepCounter(chunk.shape[0], config)
        result = pf.protect(model, chunk, config, uids=range(start, start + chunk.shape[0]), seed=seed,
                            batch_size=chunk.shape[0], observer=counter, progress=False)
        for key, value in (("protected", result.images), ("final_loss", result.final_loss),
                           ("epsilon", result.epsilon), ("met", result.met_epsilon), ("steps", counter.steps)):
            gathered[key].append(value)
    return {**{key: torch.cat(values) for key, values in gathered.items()}, "seconds": time.perf_counter() - begin}


def run(model, images: torch.Tensor, config: pf.FadeConfig, batch: int, seed: int) -> dict:
    outcome = protect_in_batches(model, images, config, batch, seed)
    steps_all = outcome["steps"].float()
    return {"protected": outcome["protected"], "met_rate": round(float(outcome["met"].float().mean()), 4),
            "mean_steps": round(float(steps_all.mean()), 1), "max_steps": int(steps_all.max()),
            "median_final_loss": round(float(outcome["final_loss"].median()), 5),
            "median_epsilon": round(float(outcome["epsilon"].median()), 5),
            "s_per_image": round(outcome["seconds"] / images.shape[0], 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the CUHK01 folder")
    parser.add_argument("--model", action="append", required=True, help="a model spec (repeatable)")
    parser.add_argument("--test-ids", type=int, default=32, help="test identities to protect (default: %(default)s)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=16, help="images per protect batch (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="CSV to write (rewritten after each configuration)")
    args = parser.parse_args(argv)
    query, gallery = first_test_ids(data.read_cuhk01(args.root), args.test_ids)
    rows = []
    for spec in args.model:
        model = load_model_spec(spec).eval()
        images = data.load_images([r.path for r in query + gallery], tuple(model.input_size))

        def mean_ap(batch_images: torch.Tensor) -> float:
            return query_gallery_map(extract_features(model, batch_images), query, gallery)

        clean_map = mean_ap(images)
        for name in args.configs:
            outcome = run(model, images, CONFIGS[name], args.batch, seed=7)
            protected = outcome.pop("protected")
            protected_map = mean_ap(protected)
            found = dict(outcome, mAP_clean=round(clean_map, 4), mAP_protected=round(protected_map, 4),
                         mAP_kept=round(protected_map / clean_map, 4),
                         psnr_to_original=round(float(psnr(protected, images).mean()), 2))
            settings = {"images": images.shape[0], "is_default": CONFIGS[name] == pf.FadeConfig(),
                        "rise_tolerance": CONFIGS[name].rise_tolerance, "batch": args.batch, "seed": 7}
            rows += [measurement("constraint", spec, name, metric, unit, found[metric], device=torch.device("cpu"),
                                 config=settings) for metric, unit in METRICS.items()]
            print(f"{spec[-40:]:40s} {name:44s} met {found['met_rate']:6.1%} steps {found['mean_steps']:6.1f} "
                  f"(max {found['max_steps']}) mAP kept {found['mAP_kept']:.3f} PSNR {found['psnr_to_original']:.2f} "
                  f"{found['s_per_image']:.2f} s/img", flush=True)
            if args.out:  # after every configuration, so a run cut short keeps what it measured
                write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
