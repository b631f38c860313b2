"""Protection for a storage format: ε must hold for the file as stored and decoded, not for the loop's pixels.

``StoringProtector`` protects a batch codec-aware (``Protector(stored_as=...)``: every step measures the loss
through a differentiable stand-in of the codec, engine/jpeg_surrogate.py), then, outside the loop, encodes every
image with the real codec, decodes it and measures its loss with the fp32 model. An image whose decoded file
misses ε falls back, within a bound:

1. up to ``FALLBACK_ROUNDS`` rounds of the real codec's straight-through estimate: the file's residual against
   the stand-in, r = decoded - stand_in(pixels), is measured with the real codec and held fixed, then
   ``ROUND_STEPS`` CO-only steps descend the loss of stand_in(pixels) + r (its value is the real decoded file's
   where r was measured; its gradient the stand-in's, which keeps the 4:2:0 chroma averaging), stopping an image
   below ``FALLBACK_MARGIN``·ε; then the real encode/decode check. An image leaves the rounds once its decoded
   file meets ε; the next round starts from where the last one left its pixels (a round that made the file worse
   is not kept, but its pixels give the next round another residual: a round from the same pixels would repeat
   it bit for bit). The stand-in alone cannot do this: its value differs from the real decoder's by a few
   levels (libjpeg's integer DCT and colour arithmetic, rounding ties; WebP's own transform), which moved the
   loss of the files that missed by ±10% of ε at 128x64 on CUHK01.
   The steps are small (``FALLBACK_BETA``): a CO step of the loop's β flips so many of the codec's roundings
   that the decoded loss rose threefold in one step; at β/20 it fell below ε within ten steps.
2. then the quality raised by ``QUALITY_STEP`` up to ``QUALITY_RAISES`` times (at most 100), from the pixels of
   its best file.

Of its files an image keeps the one with the lowest loss. What each image took is returned with it (the gallery's
manifest records it; ``fallback_policy`` is what a run records of the bounds).

The rounds run between Protector calls: inside each, nothing reads the device on the host. Their Protector
neither compacts nor captures a CUDA graph, because the residual is one tensor per round that both would have to
follow row by row.

PNG is lossless, and the loop's closing steps already round to its 8-bit grid: its images and losses are the
loop's, bit for bit (the file is encoded only when asked for).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..config import FadeConfig
from ..progress import ProgressArg, make_progress
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed
from ..storage_format import StorageFormat, decode, round_trip, to_arrays, to_pixels
from .acceleration import Acceleration
from .checks import check_batch_size, check_images, check_uids
from .features import per_image_loss
from .jpeg_surrogate import surrogate_for
from .protector import DEFAULT_BATCH, Protector, StepProgress

FALLBACK_ROUNDS = 16
ROUND_STEPS = 10
FALLBACK_BETA = 0.0005  # the CO step size of the rounds (the loop's default β is 0.01; see the module doc)
FALLBACK_MARGIN = 0.9  # a round stops an image at this fraction of ε: the estimate drifts from the file as it steps
QUALITY_STEP = 5
QUALITY_RAISES = 2


def co_only_config(config: FadeConfig, steps: int) -> FadeConfig:
    """``config`` as CO-only steps: one closing step for every image, then ``steps - 1`` for those still above ε
    (the finish phase), quantised."""
    return dataclasses.replace(config, steps=1, init_steps=0, final_steps=1, finish_steps=steps - 1, quantize=True)


def round_config(config: FadeConfig) -> FadeConfig:
    """The config of one fallback round: ``ROUND_STEPS`` CO-only steps at ``FALLBACK_BETA``, towards
    ``FALLBACK_MARGIN``·ε."""
    return co_only_config(dataclasses.replace(config, beta=FALLBACK_BETA, epsilon=config.epsilon * FALLBACK_MARGIN),
                          ROUND_STEPS)


def fallback_policy(storage: StorageFormat, fallback_rounds: int | None = None) -> dict:
    """The bounds of the fallback (recorded with a run: its files depend on them; ``fallback_rounds`` None:
    ``FALLBACK_ROUNDS``)."""
    if storage.lossless:
        return {}
    return {"fallback": "real-codec straight-through",
            "fallback_rounds": FALLBACK_ROUNDS if fallback_rounds is None else fallback_rounds,
            "round_steps": ROUND_STEPS, "fallback_beta": FALLBACK_BETA, "fallback_margin": FALLBACK_MARGIN,
            "quality_step": QUALITY_STEP, "quality_raises": QUALITY_RAISES}


def quality_ladder(storage: StorageFormat) -> list[int]:
    """The higher qualities the fallback tries, in order (none for a lossless format or at quality 100)."""
    if storage.lossless:
        return []
    raised = (min(100, storage.quality + k * QUALITY_STEP) for k in range(1, QUALITY_RAISES + 1))
    return sorted({q for q in raised if q > storage.quality})


class RealCodecEstimate:
    """pixels -> stand_in(pixels) + r, r = the real decoded file - stand_in(pixels) where it was last ``measure``d
    (held fixed, one row per image of the round): the real codec's value there, the stand-in's gradient."""

    def __init__(self, stand_in: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.stand_in = stand_in
        self.residual: torch.Tensor | None = None

    def measure(self, pixels: torch.Tensor, decoded: torch.Tensor) -> None:
        with torch.no_grad():
            self.residual = decoded - self.stand_in(pixels)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.stand_in(pixels) + self.residual


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
                 acceleration: Acceleration | None = None, fallback_rounds: int | None = None,
                 fallback: bool = True, from_files: bool = False) -> None:
        """``fallback_rounds`` None: ``FALLBACK_ROUNDS``; ``fallback`` False: no fallback at all. ``from_files``
        (``refine``, whose steps are the fallback): the batches start from decoded stored files, and for a lossy
        format every step descends the real codec's estimate measured there (one round, ``config``'s steps),
        without a fallback."""
        if not config.quantize:
            raise ValueError("protecting for storage quantises (the stored file is 8-bit): use "
                             "FadeConfig(quantize=True)")
        self.storage = storage
        rounds = FALLBACK_ROUNDS if fallback_rounds is None else fallback_rounds
        self.fallback_rounds = rounds if fallback and not from_files else 0
        self.ladder = quality_ladder(storage) if fallback and not from_files else []
        self.protector = Protector(model, config, backend=backend, acceleration=acceleration, stored_as=storage)
        self.device = self.protector.device
        stand_in = self.protector.codec
        self.estimate = RealCodecEstimate(stand_in) if stand_in is not None else None
        self.rounds = None
        still = dataclasses.replace(acceleration or Acceleration(), compact_every=0, cuda_graph=False)
        if from_files and stand_in is not None:
            self.protector = Protector(model, config, backend=backend, acceleration=still, codec=self.estimate)
        elif self.fallback_rounds > 0 and stand_in is not None:
            self.rounds = Protector(model, round_config(config), backend=backend, acceleration=still,
                                    codec=self.estimate)
        self.from_files = from_files

    def __enter__(self) -> StoringProtector:
        self.protector.__enter__()
        if self.rounds is not None:
            self.rounds.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.rounds is not None:
            self.rounds.__exit__(*exc)
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
        if self.from_files and self.estimate is not None:
            origin = pixels if start is None else start
            self.estimate.measure(origin, round_trip(origin, self.storage)[0])
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

        if self.rounds is not None:
            latest, latest_decoded = source.clone(), decoded.clone()  # where each image's last round left it
            for done in range(1, self.fallback_rounds + 1):
                missed = self._missed(loss, result.epsilon)
                if not missed:
                    break
                index = torch.tensor(missed, device=pixels.device)
                self.estimate.measure(latest[index], latest_decoded[index])
                stepped = self.rounds.protect_batch(pixels[index], keys[index.cpu()].to(keys.device),
                                                    start=latest[index]).pixels
                stored = self._store(stepped, target[index], self.storage)
                latest[index], latest_decoded[index] = stepped, stored[1]
                for row in keep(missed, *stored, stepped, self.storage.quality):
                    steps[row] = done * ROUND_STEPS  # the step budget of the rounds behind the kept file
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
        """Rows whose file misses ε (a host read, between Protector calls)."""
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
                        fallback_rounds: int | None = None) -> StoredResult:
    """``protect()`` for images that will be stored as ``storage``: every figure is of the decoded file (see the
    module doc). ``config`` is quantised (default: FadeConfig(quantize=True)); the other arguments are
    ``protect()``'s; ``fallback_rounds``: the bound of the real-codec rounds (0: none; None: ``FALLBACK_ROUNDS``).
    With PNG the images and losses are ``protect()``'s with a quantising config."""
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
                          fallback_rounds=fallback_rounds) as storing:
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
