"""The batch plan: which images are protected together, a pure function of the sorted inputs and the batch size.

The model's kernels round differently for another batch, and PixelFade's per-image ε decisions amplify the
difference into other pixels, so a protected image's bits depend on its batch. Fixing the plan fixes the bits:
a rerun, a resumed run (which redoes an interrupted batch whole) and a torchrun run (each rank takes whole
batches of the same plan: batch k goes to rank k mod WORLD_SIZE) all protect every image in the same batch.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    index: int
    images: tuple[str, ...]  # relative input paths, in plan order


@dataclass(frozen=True)
class Shard:
    """This process's share of the batches under torchrun (RANK / WORLD_SIZE), or all of them."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Shard:
        try:
            rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        except ValueError:
            from .errors import GalleryError
            raise GalleryError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                               f"are not integers (set by torchrun)") from None
        return cls(rank, world)

    def owns(self, batch: Batch) -> bool:
        return batch.index % self.world_size == self.rank

    @property
    def manifest_name(self) -> str:
        return "manifest.jsonl" if self.world_size == 1 else f"manifest.rank{self.rank}.jsonl"


def batch_plan(images: list[str], batch_size: int) -> list[Batch]:
    """The sorted inputs cut into consecutive chunks of ``batch_size`` (the last one may be shorter)."""
    ordered = sorted(images)
    return [Batch(k, tuple(ordered[start:start + batch_size]))
            for k, start in enumerate(range(0, len(ordered), batch_size))]


def inputs_digest(images: list[str]) -> str:
    """A digest of the sorted input list (the plan's only input besides the batch size)."""
    digest = hashlib.sha256()
    for name in sorted(images):
        digest.update(name.encode() + b"\0")
    return digest.hexdigest()[:16]
