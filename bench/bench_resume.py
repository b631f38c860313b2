"""How long does `--resume` take to start on a large finished gallery? It lists IN, reads the manifest, checks
every listed output (present, size, BLAKE2b digest) and tries the model once, before it protects anything.

A real run on two images gives run.json; the gallery is then scaled to --outputs images: IN holds that many
(tiny) inputs, OUT that many noise PNGs at the model's input size (what protected images look like, so the PNGs
are about as large as real ones) and a manifest line with the digests for each. Then `protect_folder` with
resume=True is timed: it finds every output intact and has nothing to protect, so the time is all start-up.
The files were just written, so they are in the page cache (warm): a cold cache adds the disk's read time.
One row (bench/common.py's long format, bench `resume`): the start-up time in seconds over --repeats runs.

    python bench/bench_resume.py --outputs 10000 --out bench/results/gallery_resume_cpu.csv
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelfade_fast.config import FadeConfig
from pixelfade_fast.gallery import GallerySettings, ManifestEntry, image_uid, protect_folder
from pixelfade_fast.gallery.content import bytes_digest
from pixelfade_fast.gallery.plan import inputs_digest
from pixelfade_fast.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402

DISTINCT = 64  # distinct noise PNGs, cycled (hashing cost does not depend on which bytes)


def png_bytes(array: np.ndarray) -> bytes:
    import io

    stream = io.BytesIO()
    Image.fromarray(array).save(stream, format="PNG")
    return stream.getvalue()


def build_gallery(scratch: Path, count: int, size: tuple[int, int], settings: GallerySettings, model) -> tuple:
    root, out = scratch / "in", scratch / "out"
    seed_file = scratch / "secret"
    tiny = png_bytes(np.zeros((8, 4, 3), np.uint8))
    names = [f"cam{i % 4}/p{i:06d}.png" for i in range(count)]
    for name in names[:2]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(tiny)
    protect_folder(model, root, out, settings, model_id="tiny_cnn", seed_file=seed_file, log=lambda m: None)
    for name in names[2:]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(tiny)
    record = json.loads((out / "run.json").read_text())
    record.update(inputs=count, inputs_digest=inputs_digest(names))
    (out / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    rng = np.random.default_rng(0)
    outputs = [png_bytes(rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)) for _ in range(DISTINCT)]
    lines = []
    for index, name in enumerate(names):
        data = outputs[index % DISTINCT]
        output = name[:-4] + ".png"
        (out / output).parent.mkdir(parents=True, exist_ok=True)
        (out / output).write_bytes(data)
        lines.append(ManifestEntry(name, output, image_uid(name), index // settings.batch_size, "protected", 0.01,
                                   True, None, record["config_hash"], record["model_id"], 0, bytes_digest(tiny),
                                   bytes_digest(data), len(data)).to_line())
    (out / "manifest.jsonl").write_text("".join(lines))
    return root, out, seed_file, sum(len(outputs[i % DISTINCT]) for i in range(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=int, default=10000)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    size = tuple(args.size)
    model = build_model("tiny_cnn", seed=0, input_size=size)
    config = FadeConfig(quantize=True, steps=2, init_steps=1, final_steps=1, finish_steps=0)
    scratch = Path(tempfile.mkdtemp(prefix="bench_resume_"))
    try:
        settings = GallerySettings(config=config, batch_size=32, backend="reference", progress=False, tune=False)
        root, out, seed_file, total_bytes = build_gallery(scratch, args.outputs, size, settings, model)
        resume = GallerySettings(config=config, batch_size=32, backend="reference", progress=False, resume=True)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = protect_folder(model, root, out, resume, model_id="tiny_cnn", seed_file=seed_file,
                                    log=lambda m: None)
            times.append(time.perf_counter() - start)
            assert report.protected == 0 and report.already_done == args.outputs and not report.redone
        row = measurement("resume", f"{args.outputs} outputs {size[0]}x{size[1]}", "protect_folder_resume",
                          "startup_time", "s", times, device=torch.device("cpu"),
                          config={"output_mb": round(total_bytes / 2**20, 1), "page_cache": "warm"})
        print(f"resume start-up with {args.outputs} outputs: {row['value']:.2f} s (median of {len(times)})")
        if args.out:
            write_measurements(args.out, [row])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
