"""A differentiable stand-in for a JPEG encode + decode, for codec-aware protection.

Every step of a codec-aware loop measures the loss at the stand-in's output, so the per-image decisions (CO or
replacement, stop in the finish phase) judge the image as it will be stored. Only the closing steps through it
were tried first: on CUHK01 at 256x128 (bundled model, 6 images) most images then stayed above ε through all 50
finish steps (the replaced, noise-like image is far from its JPEG), and the batch cost 4x a PNG run; through
every step the finish phase ended as early as PNG's and the batch cost about 1.15x.

It follows the codec step by step: RGB -> YCbCr (JFIF), 4:2:0 chroma averaging, 8x8 orthonormal DCT of the
level-shifted blocks, quantisation with the encoder's own tables at the quality (storage_format.jpeg_tables),
dequantisation, inverse DCT, the decoder's triangle ("fancy") chroma upsampling, which is bilinear interpolation
at half-pixel centres, YCbCr -> RGB and the 8-bit rounding. The roundings are straight-through: the forward value
is the rounded one (so the loss the schedule judges is close to the stored file's), the gradient passes as if
they were the identity. Planes are padded to whole blocks by repeating the edge, as libjpeg does.

Written here rather than taken from kornia's ``jpeg_codec_differentiable``: that one computes its own tables from
the quality and rounds with a cubic approximation in the forward pass, so its values drift from the file's,
and it needs sizes divisible by 16; this one reads the library's tables, is exact in the forward pass up to the
codec's integer arithmetic, and adds no dependency. Everything is tensor ops on constants made once per device,
so a captured CUDA graph can replay it and nothing reads the device on the host.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..storage_format import StorageFormat, jpeg_tables

BLOCK = 8
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def _round_straight_through(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _dct_matrix() -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix (rows: frequencies), which JPEG's 2D DCT is."""
    k = torch.arange(BLOCK, dtype=torch.float64)
    matrix = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / (2 * BLOCK)) * math.sqrt(2 / BLOCK)
    matrix[0] /= math.sqrt(2)
    return matrix.float()


def has_surrogate(storage: StorageFormat | None) -> bool:
    """The lossy formats have a stand-in; PNG needs none (the closing steps already round to its 8-bit grid)."""
    return storage is not None and not storage.lossless


def surrogate_for(storage: StorageFormat | None, device: torch.device | str) -> JpegSurrogate | None:
    """The differentiable stand-in of ``storage``'s codec on ``device`` (None where ``has_surrogate`` is false).
    WebP's is the JPEG one at the same quality: both codecs average the chroma 4:2:0 and quantise block
    transforms, so the JPEG stand-in steers the loop towards what WebP keeps too (at 128x64 on CUHK01, 18 images:
    39% of the WebP q90 files met ε straight from the loop with it, none without); the real-codec fallback
    (engine/stored.py) corrects its value to WebP's own."""
    if not has_surrogate(storage):
        return None
    return JpegSurrogate(storage.quality, device)


class JpegSurrogate:
    """``__call__(pixels)``: pixels [B, 3, H, W] in [0, 1] on ``device`` -> the JPEG-decoded pixels at
    ``quality``, differentiable (see the module doc)."""

    def __init__(self, quality: int, device: torch.device | str = "cpu") -> None:
        self.quality = quality
        luma, chroma = jpeg_tables(quality)
        # made on the device now: a captured step must not copy from the host
        self.constants = {name: value.to(device) for name, value in {
            "dct": _dct_matrix(), "luma": torch.tensor(luma, dtype=torch.float32).reshape(BLOCK, BLOCK),
            "chroma": torch.tensor(chroma, dtype=torch.float32).reshape(BLOCK, BLOCK),
            "to_ycbcr": torch.tensor(_RGB_TO_YCBCR), "to_rgb": torch.tensor(_YCBCR_TO_RGB)}.items()}

    def _planes_round_trip(self, planes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """DCT, quantise, dequantise, inverse DCT of every 8x8 block of level-shifted planes [N, 1, H, W] (padded
        to whole blocks by repeating the edge, as the encoder does, and cropped back)."""
        dct = self.constants["dct"]
        height, width = planes.shape[-2:]
        padded = F.pad(planes, (0, (-width) % BLOCK, 0, (-height) % BLOCK), mode="replicate")[:, 0]
        count, rows, columns = padded.shape
        blocks = padded.reshape(count, rows // BLOCK, BLOCK, columns // BLOCK, BLOCK).transpose(2, 3)
        restored = _round_straight_through(dct @ blocks @ dct.T / table) * table
        blocks = dct.T @ restored @ dct
        return blocks.transpose(2, 3).reshape(count, 1, rows, columns)[..., :height, :width]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        c = self.constants
        height, width = pixels.shape[-2:]
        ycbcr = _round_straight_through(torch.einsum("ij,bjhw->bihw", c["to_ycbcr"], pixels.float() * 255.0))
        # Y is level-shifted by 128 for the DCT; the matrix leaves Cb and Cr centred on 0 (the file's 128 removed)
        luma = self._planes_round_trip(ycbcr[:, :1] - 128.0, c["luma"]) + 128.0
        # 4:2:0: the mean of each 2x2 block, of planes padded as libjpeg-turbo's encoder pads them (the width to
        # whole 16-pixel macroblocks, the height to even; other paddings measured 2-3x further from its files)
        whole = F.pad(ycbcr[:, 1:], (0, (-width) % 16, 0, height % 2), mode="replicate")
        chroma = _round_straight_through(F.avg_pool2d(whole, 2))
        chroma = self._planes_round_trip(chroma.flatten(0, 1)[:, None], c["chroma"]).reshape(chroma.shape)
        chroma = chroma[..., :(height + 1) // 2, :(width + 1) // 2]  # the decoder upsamples the real samples
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)[..., :height, :width]
        decoded = torch.einsum("ij,bjhw->bihw", c["to_rgb"], torch.cat([luma, chroma], 1))
        return _round_straight_through(decoded.clamp(0.0, 255.0)) / 255.0
