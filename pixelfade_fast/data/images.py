"""Image loading: files to float tensors [3, H, W] in [0, 1] (RGB)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps


def _check_size(size: tuple[int, int] | None) -> None:
    if size is None:
        return
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"size must be None or (height, width) with two positive ints, got {size!r}")


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit greyscale (TIFF, PNG) is scaled from 0..65535, not clipped at 255 as convert() would."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        grey = (np.asarray(image, dtype=np.float64) / 257.0).round().astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode in ("I", "F"):
        raise ValueError(f"{image.mode}-mode images (32-bit integer or float pixels) have no fixed range; "
                         f"convert them to 8- or 16-bit first")
    return image.convert("RGB")


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Load one image as float32 [3, H, W] in [0, 1], RGB (grey, palette and RGBA images are converted).

    The EXIF orientation tag is applied (a phone photo stored sideways is loaded upright, as viewers show it).
    With size=(H, W) the image is resized with PIL's bilinear filter; size=None keeps its own size.
    """
    _check_size(size)
    with Image.open(path) as image:
        rgb = _to_rgb(ImageOps.exif_transpose(image))
    if size is not None and rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)  # [H, W, 3]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def load_images(
    paths: Sequence[str | Path], size: tuple[int, int] | None = None, num_workers: int = 0
) -> torch.Tensor:
    """Load images into one float32 batch [N, 3, H, W] in [0, 1], in the order of `paths`.

    Without `size` all images must already have the same size. `num_workers` > 0 decodes in a thread
    pool (PIL releases the GIL while decoding and resizing).
    """
    _check_size(size)
    if len(paths) == 0:
        raise ValueError("paths is empty: give at least one image path")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers > 0:
        with ThreadPoolExecutor(num_workers) as pool:
            images = list(pool.map(lambda p: load_image(p, size), paths))
    else:
        images = [load_image(p, size) for p in paths]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}: pass size=(H, W) to resize them")
    return torch.stack(images)
