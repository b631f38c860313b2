"""What every launcher shares: tile settings, grid limits and the argument checks specific to the kernels."""
from dataclasses import dataclass

import torch

from . import availability

# CUDA caps grid dimension y (one program row per image) at 65535; bigger batches launch in slices.
MAX_IMAGES_PER_LAUNCH = 65535
# Element indices and per-image offsets of the kernels are int32 (image bases are int64), so one image
# must stay well below 2**31 elements.
MAX_IMAGE_NUMEL = 2**30


@dataclass(frozen=True)
class Tiles:
    """Launch shape of one kernel: elements per program and warps per program."""
    block: int
    num_warps: int


def image_slices(batch: int) -> list[tuple[int, int]]:
    """(first image, image count) of each launch covering ``batch`` images."""
    step = MAX_IMAGES_PER_LAUNCH
    return [(first, min(step, batch - first)) for first in range(0, batch, step)]


def require_device(tensor: torch.Tensor, op: str) -> None:
    """Raise when the kernels cannot run on ``tensor``'s device here, saying why and what to do."""
    reason = availability.unavailable_reason(tensor.device)
    if reason:
        raise RuntimeError(f"pixelfade_triton::{op} cannot run on {tensor.device}: {reason}")


def require_image_numel(numel: int, op: str) -> None:
    if numel > MAX_IMAGE_NUMEL:
        raise ValueError(f"pixelfade_triton::{op} supports at most {MAX_IMAGE_NUMEL} elements per image "
                         f"(C*H*W), got {numel}; split the images into tiles")

