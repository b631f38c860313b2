"""How a protected image is stored: PNG (lossless), JPEG or WebP at a quality, and the real codec round trip.

``StorageFormat`` is the one home of the encoder settings. They are fixed (no EXIF, no ICC profile, JPEG 4:2:0
chroma subsampling without the optimise or progressive passes, WebP method 4), so the same pixels and the same
Pillow and codec libraries give the same bytes; ``settings()`` is what a run records (the library versions among
it: other versions may encode other bytes). A leaf module (PIL, numpy, torch), so that the engine's codec-aware
protection, the gallery and the evaluation share it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import PIL
import torch
from PIL import Image, features

FORMATS = ("png", "jpeg", "webp")
EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
DEFAULT_QUALITY = 90
QUALITY_RANGE = (1, 100)
JPEG_SUBSAMPLING = 2  # Pillow's code for 4:2:0 (what JPEG encoders use by default)
WEBP_METHOD = 4  # libwebp's speed/size trade-off (Pillow's default), fixed so that the bytes are


@dataclass(frozen=True)
class StorageFormat:
    """``name``: png, jpeg or webp; ``quality``: 1..100 for jpeg and webp (None: DEFAULT_QUALITY), None for png.
    A bad combination raises ValueError saying what to pass instead."""

    name: str = "png"
    quality: int | None = None

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise ValueError(f"unknown storage format {self.name!r}; choose one of {', '.join(FORMATS)}")
        if self.name == "png":
            if self.quality is not None:
                raise ValueError(f"--quality {self.quality} does not apply to png, which is lossless: leave "
                                 f"--quality out, or choose --format jpeg or webp")
            return
        quality = DEFAULT_QUALITY if self.quality is None else self.quality
        if isinstance(quality, bool) or not isinstance(quality, int) or not \
                QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
            raise ValueError(f"--quality must be an integer between {QUALITY_RANGE[0]} and {QUALITY_RANGE[1]}, "
                             f"got {self.quality!r}")
        object.__setattr__(self, "quality", quality)

    @property
    def lossless(self) -> bool:
        return self.name == "png"

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.name]

    def at_quality(self, quality: int | None) -> StorageFormat:
        """The same format at another quality (a lossless format stays as it is)."""
        return self if self.lossless else StorageFormat(self.name, quality)

    def describe(self) -> str:
        return self.name if self.lossless else f"{self.name} q{self.quality}"

    def settings(self) -> dict:
        """The encoder settings and library versions the stored bytes depend on (recorded in a run record). PNG
        records its name alone, as runs did before the other formats (its pixels are exact whatever the
        encoder)."""
        if self.lossless:
            return {"format": self.name}
        found = {"format": self.name, "quality": self.quality, "pillow": PIL.__version__}
        if self.name == "jpeg":
            found.update(subsampling="4:2:0", optimize=False, progressive=False, libjpeg=features.version("jpg"))
        elif self.name == "webp":
            found.update(method=WEBP_METHOD, libwebp=features.version("webp"))
        return found

    def encode(self, array: np.ndarray) -> bytes:
        """An [H, W, 3] uint8 array as this format's bytes."""
        encoded = io.BytesIO()
        image = Image.fromarray(array)
        if self.name == "png":
            image.save(encoded, format="PNG")
        elif self.name == "jpeg":
            image.save(encoded, format="JPEG", quality=self.quality, subsampling=JPEG_SUBSAMPLING, optimize=False,
                       progressive=False)
        else:
            image.save(encoded, format="WEBP", quality=self.quality, method=WEBP_METHOD, lossless=False)
        return encoded.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Encoded bytes (any format PIL reads) as an [H, W, 3] uint8 array."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def to_pixels(arrays: list[np.ndarray] | np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """[H, W, 3] uint8 arrays -> float32 pixels [B, 3, H, W] in [0, 1] on ``device``."""
    stacked = torch.from_numpy(np.stack(list(arrays)))
    return (stacked.permute(0, 3, 1, 2).float() / 255.0).to(device)


def to_arrays(pixels: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] pixels in [0, 1] (any device) -> [B, H, W, 3] uint8 on the host, in one transfer."""
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def round_trip(pixels: torch.Tensor, storage: StorageFormat) -> tuple[torch.Tensor, list[int]]:
    """Each image of [B, 3, H, W] pixels stored as ``storage`` and decoded: (decoded pixels on the pixels'
    device, bytes per image)."""
    encoded = [storage.encode(array) for array in to_arrays(pixels)]
    return to_pixels([decode(data) for data in encoded], pixels.device), [len(data) for data in encoded]


@lru_cache(maxsize=None)
def jpeg_tables(quality: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (luma, chroma) quantisation tables, 64 values each in row-major order, that the JPEG encoder uses at
    ``quality``: read back from an encoded image, so they are the library's own."""
    data = StorageFormat("jpeg", quality).encode(np.zeros((16, 16, 3), np.uint8))
    with Image.open(io.BytesIO(data)) as image:
        tables = image.quantization
    return tuple(tables[0]), tuple(tables[1])
