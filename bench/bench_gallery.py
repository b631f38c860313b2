"""Does the gallery command keep up with the engine? `pixelfade protect` (decode, resize, protect, PNG encode
and write, manifest) against `protect()` on the same images preloaded as one tensor, with the same model,
config (quantised, as the gallery), batch size, backend and speed options, measured in one run.

    python bench/bench_gallery.py --images-dir ../shared/data/cuhk01/campus --images 64 \\
        --out bench/results/gallery_cpu_2core.csv
Without --images-dir it protects SynthPed crops generated into a temporary folder. Rows (bench/common.py's long
format, bench `gallery`): each provider's `throughput` (images/s), `pixelfade_protect`'s `speedup_vs_protect`
(its throughput over protect()'s) and the images it `protected` and `failed`.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast.data import generate_synthped, load_images
from pixelfade_fast.gallery import GallerySettings, create_seed_file, find_inputs, image_uid, protect_folder
from pixelfade_fast.models.spec import load_model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402


def gallery_folder(args, scratch: Path) -> Path:
    """A scratch folder holding exactly the benchmark's images (copies: the gallery reads no symlink that leaves
    its input folder)."""
    folder = scratch / "in"
    folder.mkdir()
    if args.images_dir is None:
        generate_synthped(scratch / "synthped", num_ids_train=1, num_ids_test=max(2, args.images // 4),
                          images_per_id_per_cam=2, num_cams=2, size=(128, 64), seed=0)
        source = scratch / "synthped" / "bounding_box_test"
    else:
        source = Path(args.images_dir)
    names = find_inputs(source).images[: args.images]
    if len(names) < args.images:
        raise SystemExit(f"error: {source} holds {len(names)} images, fewer than --images {args.images}")
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images-dir", help="folder of images to protect (default: generated SynthPed crops)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--model", default="osnet_x0_25", help="a --model SPEC (default: the bundled demo model)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--io-workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = load_model_spec(args.model).to(device)
    config = pf.FadeConfig(steps=args.steps, quantize=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        seed_file = create_seed_file(scratch / "secret")  # a 256-bit secret: the engine and the gallery share it
        seed = seed_file.seed
        folder = gallery_folder(args, scratch)
        names = find_inputs(folder).images
        preloaded = load_images([folder / n for n in names], tuple(model.input_size)).to(device)
        uids = [image_uid(n) for n in names]
        warm = pf.FadeConfig(steps=2, init_steps=1, final_steps=0, finish_steps=0)
        pf.protect(model, preloaded[:2], warm, seed=1, backend=args.backend, progress=False)
        begin = time.perf_counter()
        engine_result = pf.protect(model, preloaded, config, uids=uids, seed=seed, backend=args.backend,
                                   batch_size=args.batch_size, progress=False)
        engine_s = time.perf_counter() - begin
        settings = GallerySettings(config=config, batch_size=args.batch_size, backend=args.backend,
                                   io_workers=args.io_workers, progress=False, tune=False,
                                   threads=torch.get_num_threads())  # as protect() above: untuned
        begin = time.perf_counter()
        report = protect_folder(model, folder, scratch / "out", settings, model_id=model.model_id,
                                seed_file=seed_file.path, log=lambda message: None)
        gallery_s = time.perf_counter() - begin
        shutil.rmtree(scratch / "out")
    count = len(names)
    case = f"{model.model_id} {'x'.join(map(str, model.input_size))} {count} images"
    settings = {"batch_size": args.batch_size, "steps": config.total_steps, "backend": engine_result.backend,
                "io_workers": args.io_workers}

    def row(provider: str, metric: str, unit: str, value: float) -> dict:
        return measurement("gallery", case, provider, metric, unit, value, device=device, config=settings)

    rows = [row("protect", "throughput", "images/s", count / engine_s),
            row("pixelfade_protect", "throughput", "images/s", count / gallery_s),
            row("pixelfade_protect", "speedup_vs_protect", "x", engine_s / gallery_s),
            row("pixelfade_protect", "protected", "images", report.protected),
            row("pixelfade_protect", "failed", "images", len(report.failed))]
    print(f"protect(): {count / engine_s:.3f} img/s   pixelfade protect: {count / gallery_s:.3f} img/s"
          f"   ratio {engine_s / gallery_s:.3f} (target >= 0.9)")
    if args.out:
        write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
