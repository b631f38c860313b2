"""Protection that survives the storage path (issue 23): every figure of the decoded stored files.

    python bench/bench_storage_formats.py --root ../shared/data/cuhk01 --test-ids 16 \
        --model osnet_x0_25 [--model osnet_x0_25:runs/.../model.safetensors] --out bench/results/storage_formats_cuhk01_cpu.csv

For each model (at 256x128), the query and gallery images of ``--test-ids`` CUHK01 test identities are protected
and stored in each variant: PNG (today's output), the PNG re-encoded as JPEG q90 (what an operator does without
this feature), and "protected for storage" (``protect_for_storage``) with JPEG q90, JPEG q75 and WebP q90
(codec-aware through the JPEG stand-in, then the real codec check and the bounded fallback). Per variant: bytes per image, the rate of decoded files below ε, p->p
and o->p mAP kept (over o->o), seconds per image (PNG, JPEG q90, WebP q90, PNG, JPEG q90, WebP q90, JPEG q75:
the PNG, JPEG q90 and WebP q90 timings interleaved, so their ratios are taken under the same load). The CSV is rewritten after every variant. Two pipeline steps are measured on each stored gallery, not defended: a resize to
0.75x and back to the model's size, and a second JPEG encode at q75.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, read_measurements, write_measurements  # noqa: E402

from pixelfade_fast import FadeConfig, StorageFormat, protect_for_storage  # noqa: E402
from pixelfade_fast.data import read_cuhk01  # noqa: E402
from pixelfade_fast.data.datasets import limit_test_ids  # noqa: E402
from pixelfade_fast.data.images import load_images  # noqa: E402
from pixelfade_fast.engine import extract_features, per_image_loss  # noqa: E402
from pixelfade_fast.evaluation.reid_metrics import reid_settings  # noqa: E402
from pixelfade_fast.models.spec import load_model_spec  # noqa: E402
from pixelfade_fast.storage_format import round_trip  # noqa: E402

BENCH = "storage_formats"
SIZE = (256, 128)
SEED = 5
COST_VS_PNG = ("jpeg q90", "webp q90")  # timed twice, interleaved with PNG: their cost is a ratio to it


def resized(pixels: torch.Tensor, factor: float = 0.75) -> torch.Tensor:
    """A pipeline's resize: to ``factor`` of the size (area), then back to the model's size (bilinear), 8-bit."""
    size = pixels.shape[-2:]
    small = F.interpolate(pixels, scale_factor=factor, mode="area")
    return (F.interpolate(small, size=size, mode="bilinear", align_corners=False).clamp(0, 1) * 255).round() / 255


def scores(model, images, stored, epsilon, num_query, ids) -> dict:
    """met ε rate and mAP kept (p->p, o->p over o->o) of the decoded ``stored`` images."""
    original, protected = extract_features(model, images), extract_features(model, stored)
    met = (per_image_loss(protected, original) < epsilon).float().mean().item()
    settings = reid_settings(original[:num_query], protected[:num_query], original[num_query:],
                             protected[num_query:], *ids)
    base = settings["original->original"]["mAP"]
    return {"met_epsilon": met, "pp_map_kept": settings["protected->protected"]["mAP"] / base,
            "op_map_kept": settings["original->protected"]["mAP"] / base, "oo_map": base}


def markdown_tables(path: Path) -> str:
    """The report's tables from a CSV this script wrote: per model, each variant as stored, then the pipelines."""
    rows = read_measurements(path)
    text = []
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        value = {(r["provider"], r["metric"], r["x_value"]): r["value"] for r in mine}
        variants = list(dict.fromkeys(r["provider"] for r in mine if r["metric"] == "bytes_per_image"))
        text += [f"**{case}**", "", "| stored as | bytes / image | met ε after decoding | p→p mAP kept | "
                 "o→p mAP kept | fallback: rounds / higher quality |", "|---|---|---|---|---|---|"]
        for name in variants:
            fallback = ((f"{value[(name, 'fallback_steps_rate', 'as stored')]:.0%} / "
                         f"{value[(name, 'quality_raised_rate', 'as stored')]:.0%}")
                        if (name, "fallback_steps_rate", "as stored") in value else "–")
            text.append(f"| {name} | {value[(name, 'bytes_per_image', 'as stored')]:,.0f} | "
                        f"{value[(name, 'met_epsilon', 'as stored')]:.1%} | "
                        f"{value[(name, 'pp_map_kept', 'as stored')]:.3f} | "
                        f"{value[(name, 'op_map_kept', 'as stored')]:.3f} | {fallback} |")
        pipelines = [p for p in dict.fromkeys(r["x_value"] for r in mine if r["metric"] == "met_epsilon")
                     if p != "as stored"]
        text += ["", "| stored as | then | met ε | p→p mAP kept | o→p mAP kept |", "|---|---|---|---|---|"]
        for name in variants:
            for pipeline in pipelines:
                text.append(f"| {name} | {pipeline} | {value[(name, 'met_epsilon', pipeline)]:.1%} | "
                            f"{value[(name, 'pp_map_kept', pipeline)]:.3f} | "
                            f"{value[(name, 'op_map_kept', pipeline)]:.3f} |")
        cost = [r for r in mine if r["metric"] == "cost_vs_png"]
        seconds = {r["provider"]: r["value"] for r in mine if r["metric"] == "seconds_per_image"}
        text += ["", "seconds per image (median): " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())
                 + "".join(f"; {r['provider']} / png, interleaved: {r['value']:.2f}x" for r in cost), ""]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, help="print the report's tables from this CSV and exit")
    parser.add_argument("--root")
    parser.add_argument("--test-ids", type=int, default=16)
    parser.add_argument("--model", action="append", help="a model spec (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, nargs=2, default=SIZE, metavar=("H", "W"),
                        help="input size the models run at (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/storage_formats_cuhk01_cpu.csv"))
    args = parser.parse_args(argv)
    if args.table is not None:
        print(markdown_tables(args.table))
        return 0
    if args.root is None or not args.model:
        parser.error("--root and --model are needed to measure (or --table CSV to print)")
    torch.set_num_threads(args.threads)
    split = limit_test_ids(read_cuhk01(args.root), args.test_ids, SEED)
    records = split.query + split.gallery
    ids = ([r.pid for r in split.query], [r.camid for r in split.query], [r.pid for r in split.gallery],
           [r.camid for r in split.gallery])
    size = tuple(args.size)
    images = load_images([r.path for r in records], size)
    config = FadeConfig(quantize=True)
    device = torch.device("cpu")
    rows = []
    for spec in args.model:
        model = load_model_spec(spec, input_size=size).eval()
        case = f"{spec.split(':')[0]}{'' if ':' not in spec else ' (' + Path(spec.split(':', 1)[1]).stem + ')'} " \
               f"cuhk01 {len(records)} images {size[0]}x{size[1]}"
        seconds: dict[str, list[float]] = {}

        def add_variant(name: str, stored: torch.Tensor, size: float, epsilon: torch.Tensor, result=None) -> None:
            config_json = {"format": name, "test_ids": args.test_ids, "seed": SEED}

            def add(metric: str, unit: str, value: float, pipeline: str = "as stored") -> None:
                rows.append(measurement(BENCH, case, name, metric, unit, value, device=device, x_name="pipeline",
                                        x_value=pipeline, config=config_json))

            add("bytes_per_image", "B", size)
            for pipeline, seen in (("as stored", stored), ("resized 0.75x and back", resized(stored)),
                                   ("re-encoded jpeg q75", round_trip(stored, StorageFormat("jpeg", 75))[0])):
                for metric, value in scores(model, images, seen, epsilon, len(split.query), ids).items():
                    add(metric, "fraction" if metric != "oo_map" else "mAP", value, pipeline)
            if result is not None:  # what the bounded fallback took
                add("fallback_steps_rate", "fraction", sum(1 for s in result.fallback_steps if s) / len(records))
                add("quality_raised_rate", "fraction",
                    sum(1 for q in result.quality if q > result.storage.quality) / len(records))

        def timed(storage: StorageFormat):
            start = time.perf_counter()
            result = protect_for_storage(model, images, storage, config, seed=SEED, backend="cpp", progress=False)
            seconds.setdefault(storage.describe(), []).append((time.perf_counter() - start) / len(records))
            print(f"{case}: {storage.describe()} {seconds[storage.describe()][-1]:.2f} s/image", flush=True)
            return result

        def write_timings() -> None:
            kept = [r for r in rows if r["metric"] not in ("seconds_per_image", "cost_vs_png") or r["case"] != case]
            for name, values in seconds.items():
                provider = name if name == "png" else f"{name} protected for storage"
                kept.append(measurement(BENCH, case, provider, "seconds_per_image", "s", values, device=device,
                                        config={"test_ids": args.test_ids, "seed": SEED}))
            for lossy in COST_VS_PNG:
                pairs = list(zip(seconds.get(lossy, []), seconds.get("png", [])))
                if pairs:
                    kept.append(measurement(BENCH, case, f"{lossy} protected for storage", "cost_vs_png", "x",
                                            [a / b for a, b in pairs], device=device,
                                            config={"test_ids": args.test_ids, "seed": SEED, "interleaved": True}))
            rows[:] = kept
            write_measurements(args.out, rows)  # after every variant: a run cut short keeps what it measured

        # The most needed first: PNG, JPEG q90 (and the PNG re-encoded as JPEG), WebP q90, then the repeated
        # timings of the three (interleaved with the first, so their ratios are taken under the same load), JPEG q75.
        png = timed(StorageFormat("png"))
        add_variant("png", png.images, png.bytes_per_image, png.epsilon)
        naive, naive_bytes = round_trip(png.images, StorageFormat("jpeg", 90))
        add_variant("png re-encoded as jpeg q90", naive, sum(naive_bytes) / len(naive_bytes), png.epsilon)
        write_timings()
        for storage in (StorageFormat("jpeg", 90), StorageFormat("webp", 90), StorageFormat("png"),
                        StorageFormat("jpeg", 90), StorageFormat("webp", 90), StorageFormat("jpeg", 75)):
            result = timed(storage)
            if not storage.lossless and len(seconds[storage.describe()]) == 1:
                add_variant(f"{storage.describe()} protected for storage", result.images, result.bytes_per_image,
                            result.epsilon, result)
            write_timings()
    return 0


if __name__ == "__main__":
    sys.exit(main())
