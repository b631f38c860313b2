"""Fresh random inputs for the op tests, shared by the C++ and the Triton backends' tests."""
from __future__ import annotations

import torch

UINT64_EDGES = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]
INDEX_EDGES = [0, 1, 4095, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40 + 5, 2**62 + 3]
# The four (do_co, do_pro) combinations, dealt to images in a random order.
FLAG_COMBOS = torch.tensor([[True, True], [True, False], [False, True], [False, False]])


def as_int64(value: int) -> int:
    """The int64 with the bits of a uint64 value."""
    return value - 2**64 if value >= 2**63 else value


def random_keys(batch: int, generator: torch.Generator) -> torch.Tensor:
    """int64 [batch, 4] keys rows (noise key, noise counter word, mask key, mask counter word), every word
    over the whole uint64 range, as contract v2 derives them."""
    return torch.randint(-(2**63), 2**63 - 1, (batch, 4), generator=generator, dtype=torch.int64)


def step_inputs(shape, dtype, device, generator, num_masks=5):
    """Fresh random fade-step arguments; every (do_co, do_pro) combination shows up when the batch allows."""
    batch, channels = shape[:2]
    flags = FLAG_COMBOS[torch.randperm(4, generator=generator).repeat(batch // 4 + 1)[:batch]]
    args = dict(
        xp=1.3 * torch.randn(shape, generator=generator, dtype=dtype),
        mom=torch.randn(shape, generator=generator, dtype=dtype),
        grad=torch.randn(shape, generator=generator, dtype=dtype) * 10 ** torch.randn(
            (batch, 1, 1, 1), generator=generator, dtype=dtype),
        do_co=flags[:, 0].clone(), do_pro=flags[:, 1].clone(),
        beta=0.01 + 0.05 * torch.rand(batch, generator=generator),
        mask_idx=torch.randint(0, num_masks, (batch,), generator=generator, dtype=torch.int32),
        keys=random_keys(batch, generator),
        lo=-1.0 - 0.5 * torch.rand(channels, generator=generator),
        hi=1.0 + 0.5 * torch.rand(channels, generator=generator))
    return {name: value.to(device) for name, value in args.items()}
