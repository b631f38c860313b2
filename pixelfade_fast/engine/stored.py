"""Protection for a storage format: ε must hold for the file as stored and decoded, not for the loop's pixels.

``StoringProtector`` protects a batch codec-aware (``Protector(stored_as=...)``: for JPEG every step measures the
loss through a differentiable stand-in of the codec, engine/jpeg_surrogate.py), then, outside
the loop, encodes every image with the real codec, decodes it and measures its loss with the fp32 model. An image
whose decoded file misses ε falls back, within a bound: ``fallback_steps`` more CO-only steps through the codec
(JPEG; from its protected pixels, towards its original's features), then the quality raised by ``QUALITY_STEP`` up to
``QUALITY_RAISES`` times (at most 100), stopping at the first file that meets ε; of its files it keeps the one
with the lowest loss. What each image took is returned with it (the gallery's manifest records it).

PNG is lossless, and the loop's closing steps already round to its 8-bit grid: its images and losses are the
loop's, bit for bit (the file is encoded only when asked for).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..config import FadeConfig
from ..progress import ProgressArg, make_progress
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed
from ..storage_format import StorageFormat, decode, to_arrays, to_pixels
from .acceleration import Acceleration
from .checks import check_batch_size, check_images, check_uids
from .features import per_image_loss
from .jpeg_surrogate import has_surrogate
from .protector import DEFAULT_BATCH, Protector, StepProgress

FALLBACK_STEPS = 40
QUALITY_STEP = 5
QUALITY_RAISES = 2


def co_only_config(config: FadeConfig, steps: int) -> FadeConfig:
    """``config`` as CO-only steps: one closing step for every image, then ``steps - 1`` for those still above ε
    (the finish phase), quantised."""
    return dataclasses.replace(config, steps=1, init_steps=0, final_steps=1, finish_steps=steps - 1, quantize=True)


def fallback_policy(storage: StorageFormat, fallback_steps: int = FALLBACK_STEPS) -> dict:
    """The bounds of the fallback (recorded with a run: its files depend on them)."""
    if storage.lossless:
        return {}
    return {"fallback_steps": fallback_steps if has_surrogate(storage) else 0, "quality_step": QUALITY_STEP,
            "quality_raises": QUALITY_RAISES}


def quality_ladder(storage: StorageFormat) -> list[int]:
    """The higher qualities the fallback tries, in order (none for a lossless format or at quality 100)."""
    if storage.lossless:
        return []
    raised = (min(100, storage.quality + k * QUALITY_STEP) for k in range(1, QUALITY_RAISES + 1))
    return sorted({q for q in raised if q > storage.quality})


@dataclass
class StoredBatch:
    """A protected batch as stored: the decoded pixels, each file's loss (fp32 model) and ε, the files (None for
    a lossless format: encode ``pixels``), the quality of each file and the fallback steps it took."""

    pixels: torch.Tensor
    final_loss: torch.Tensor
    epsilon: torch.Tensor
    files: list[bytes] | None
    quality: list[int | None]
    fallback_steps: list[int]

    @property
    def met_epsilon(self) -> torch.Tensor:
        return self.final_loss < self.epsilon


class StoringProtector:
    """Protects batches of pixels [B, 3, H, W] in [0, 1] for ``storage`` (see the module doc); a context manager,
    like ``Protector``."""

    def __init__(self, model: nn.Module, config: FadeConfig, storage: StorageFormat, *, backend: str | None = "auto",
                 acceleration: Acceleration | None = None, fallback_steps: int = FALLBACK_STEPS,
                 fallback: bool = True) -> None:
        """``fallback`` False: no fallback at all (``refine``: its steps are the fallback)."""
        if not config.quantize:
            raise ValueError("protecting for storage quantises (the stored file is 8-bit): use "
                             "FadeConfig(quantize=True)")
        self.storage = storage
        self.fallback_steps = fallback_steps
        self.ladder = quality_ladder(storage) if fallback else []
        self.protector = Protector(model, config, backend=backend, acceleration=acceleration, stored_as=storage)
        self.fallback = None  # more steps help only through a stand-in of the codec (WebP has none: quality only)
        if fallback and has_surrogate(storage) and fallback_steps > 0:
            self.fallback = Protector(model, co_only_config(config, fallback_steps), backend=backend,
                                      acceleration=acceleration, stored_as=storage)
        self.device = self.protector.device

    def __enter__(self) -> StoringProtector:
        self.protector.__enter__()
        if self.fallback is not None:
            self.fallback.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.fallback is not None:
            self.fallback.__exit__(*exc)
        self.protector.__exit__(*exc)

    def _store(self, pixels: torch.Tensor, target: torch.Tensor,
               storage: StorageFormat) -> tuple[list[bytes], torch.Tensor, torch.Tensor]:
        """(files, decoded pixels, loss of each decoded file) of ``pixels`` stored as ``storage``."""
        files = [storage.encode(array) for array in to_arrays(pixels)]
        decoded = to_pixels([decode(data) for data in files], pixels.device)
        _, features = self.protector.targets(decoded)
        return files, decoded, per_image_loss(features, target)

    def protect_batch(self, pixels: torch.Tensor, keys: torch.Tensor, *, start: torch.Tensor | None = None,
                      progress: StepProgress | None = None) -> StoredBatch:
        """``Protector.protect_batch`` for the storage format (``start``: pixels to start from, as there)."""
        count = pixels.shape[0]
        result = self.protector.protect_batch(pixels, keys, start=start, progress=progress)
        if self.storage.lossless:
            return StoredBatch(result.pixels, result.final_loss, result.epsilon, None, [None] * count, [0] * count)
        _, target = self.protector.targets(pixels)
        files, decoded, loss = self._store(result.pixels, target, self.storage)
        source = result.pixels.clone()  # the pixels each kept file was encoded from
        quality, steps = [self.storage.quality] * count, [0] * count

        def keep(rows: list[int], new_files, new_decoded, new_loss, new_source, new_quality: int) -> list[int]:
            """Keep each new file whose loss is lower; returns the rows kept."""
            better = (new_loss < loss[rows]).tolist()
            for position, row in enumerate(rows):
                if better[position]:
                    files[row], quality[row] = new_files[position], new_quality
                    decoded[row], loss[row], source[row] = new_decoded[position], new_loss[position], \
                        new_source[position]
            return [row for row, kept in zip(rows, better) if kept]

        missed = self._missed(loss, result.epsilon)
        if missed and self.fallback is not None:
            index = torch.tensor(missed, device=pixels.device)
            continued = self.fallback.protect_batch(pixels[index], keys[index.cpu()].to(keys.device),
                                                    start=result.pixels[index])
            for row in keep(missed, *self._store(continued.pixels, target[index], self.storage), continued.pixels,
                            self.storage.quality):
                steps[row] = self.fallback_steps  # the kept file's pixels took them
        for higher in self.ladder:
            missed = self._missed(loss, result.epsilon)
            if not missed:
                break
            index = torch.tensor(missed, device=pixels.device)
            keep(missed, *self._store(source[index], target[index], self.storage.at_quality(higher)), source[index],
                 higher)
        return StoredBatch(decoded, loss, result.epsilon, files, quality, steps)

    @staticmethod
    def _missed(loss: torch.Tensor, epsilon: torch.Tensor) -> list[int]:
        """Rows whose file misses ε (a host read, after the loop)."""
        return torch.nonzero(loss >= epsilon).flatten().tolist()


@dataclass
class StoredResult:
    """``protect_for_storage``'s result: the decoded stored images (on the input's device), each file's bytes,
    its loss (fp32 model) and ε, the quality each file was encoded at and the fallback steps it took."""

    images: torch.Tensor
    files: list[bytes]
    final_loss: torch.Tensor
    epsilon: torch.Tensor
    quality: list[int | None]
    fallback_steps: list[int]
    storage: StorageFormat

    @property
    def met_epsilon(self) -> torch.Tensor:
        return self.final_loss < self.epsilon

    @property
    def bytes_per_image(self) -> float:
        return sum(map(len, self.files)) / max(1, len(self.files))


def protect_for_storage(model: nn.Module, images: torch.Tensor, storage: StorageFormat,
                        config: FadeConfig | None = None, *, uids: Sequence[int] | torch.Tensor | None = None,
                        seed: int | None = None, backend: str | None = "auto", batch_size: int | None = None,
                        acceleration: Acceleration | None = None, progress: ProgressArg = None,
                        rng_contract: int = DEFAULT_CONTRACT,
                        fallback_steps: int = FALLBACK_STEPS) -> StoredResult:
    """``protect()`` for images that will be stored as ``storage``: every figure is of the decoded file (see the
    module doc). ``config`` is quantised (default: FadeConfig(quantize=True)); the other arguments are
    ``protect()``'s. With PNG the images and losses are ``protect()``'s with a quantising config."""
    config = dataclasses.replace(config or FadeConfig(), quantize=True)
    check_images(images, model)
    check_batch_size(batch_size)
    count, device = images.shape[0], images.device
    uid_list = check_uids(uids, count)
    batch_size = batch_size or DEFAULT_BATCH.get(device.type, 16)
    seed = random_seed(rng_contract) if seed is None else int(seed)
    keys = derive_keys(seed, uid_list, rng_contract)
    report = make_progress(progress, count, "protect")
    batches = []
    with StoringProtector(model, config, storage, backend=backend, acceleration=acceleration,
                          fallback_steps=fallback_steps) as storing:
        for first in range(0, count, batch_size):
            rows = slice(first, min(first + batch_size, count))
            batch = storing.protect_batch(images[rows].to(storing.device).float(), keys[rows].to(storing.device))
            if batch.files is None:
                batch.files = [storage.encode(array) for array in to_arrays(batch.pixels)]
            batches.append(batch)
            report(rows.stop, count)
    return StoredResult(torch.cat([b.pixels for b in batches]).to(device, images.dtype),
                        [f for b in batches for f in b.files], torch.cat([b.final_loss for b in batches]).to(device),
                        torch.cat([b.epsilon for b in batches]).to(device), [q for b in batches for q in b.quality],
                        [s for b in batches for s in b.fallback_steps], storage)
