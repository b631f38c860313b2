"""Why codec-aware files miss ε after decoding (issue 23): the loop's pixels against what each codec makes of them.

    python bench/diagnose_storage_misses.py --root ../shared/data/cuhk01 --test-ids 6 --size 128 64

Protects the images of ``--test-ids`` CUHK01 test identities (one batch, the bundled model, the loop through the
JPEG q90 stand-in, no fallback) and prints, per image, the loss over ε of: the loop's pixels as they are, the
stand-in's output, the real JPEG q90 file, the same pixels at q95 and q100 (4:2:0), and at q90 and q100 with
4:4:4 chroma; and how far the stand-in's output lies from the real decoded file (mean and max, 8-bit levels).
"""
from __future__ import annotations

import argparse
import io
import sys

import numpy as np
import torch
from PIL import Image

from pixelfade_fast import FadeConfig, StorageFormat
from pixelfade_fast.data import read_cuhk01
from pixelfade_fast.data.datasets import limit_test_ids
from pixelfade_fast.data.images import load_images
from pixelfade_fast.engine import per_image_loss
from pixelfade_fast.engine.jpeg_surrogate import JpegSurrogate
from pixelfade_fast.engine.protector import Protector
from pixelfade_fast.models.spec import load_model_spec
from pixelfade_fast.reference.rng import DEFAULT_CONTRACT, derive_keys
from pixelfade_fast.storage_format import decode, round_trip, to_arrays, to_pixels

SEED = 5


def full_chroma(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """The pixels as a 4:4:4 JPEG at ``quality``, decoded."""
    arrays = []
    for array in to_arrays(pixels):
        data = io.BytesIO()
        Image.fromarray(array).save(data, format="JPEG", quality=quality, subsampling=0)
        arrays.append(decode(data.getvalue()))
    return to_pixels(arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--test-ids", type=int, default=6)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
    parser.add_argument("--model", default="osnet_x0_25")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    size = tuple(args.size)
    split = limit_test_ids(read_cuhk01(args.root), args.test_ids, SEED)
    records = split.query + split.gallery
    images = load_images([r.path for r in records], size)
    model = load_model_spec(args.model, input_size=size).eval()
    keys = derive_keys(SEED, list(range(len(records))), DEFAULT_CONTRACT)
    with Protector(model, FadeConfig(quantize=True), backend="cpp", stored_as=StorageFormat("jpeg", 90)) as loop:
        result = loop.protect_batch(images, keys)
        _, target = loop.targets(images)

        def over_epsilon(pixels: torch.Tensor) -> np.ndarray:
            _, features = loop.targets(pixels)
            return (per_image_loss(features, target) / result.epsilon).numpy()

        pixels = result.pixels
        stand_in = JpegSurrogate(90)(pixels)
        real = round_trip(pixels, StorageFormat("jpeg", 90))[0]
        columns = {"loop pixels": over_epsilon(pixels), "stand-in q90": over_epsilon(stand_in),
                   "real q90": over_epsilon(real),
                   "real q95": over_epsilon(round_trip(pixels, StorageFormat("jpeg", 95))[0]),
                   "real q100": over_epsilon(round_trip(pixels, StorageFormat("jpeg", 100))[0]),
                   "4:4:4 q90": over_epsilon(full_chroma(pixels, 90)),
                   "4:4:4 q100": over_epsilon(full_chroma(pixels, 100))}
        gap = (stand_in - real).abs() * 255
    print(f"loss / ε per image ({len(records)} images, {size[0]}x{size[1]}, {args.model}); stand-in vs real file in "
          f"8-bit levels")
    print("| image | " + " | ".join(columns) + " | stand-in - real: mean / max |")
    print("|---" * (len(columns) + 2) + "|")
    for row in range(len(records)):
        print(f"| {row} | " + " | ".join(f"{c[row]:.3f}" for c in columns.values()) +
              f" | {gap[row].mean():.2f} / {gap[row].max():.0f} |")
    met = {name: float((c < 1).mean()) for name, c in columns.items()}
    print("| met ε | " + " | ".join(f"{v:.0%}" for v in met.values()) + " | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
