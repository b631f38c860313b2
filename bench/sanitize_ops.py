"""Runs every CUDA op of every fast backend once on small odd-shaped inputs, for compute-sanitizer to watch
(the cpp fade_step_ in both CUDA variants where the GPU has thread-block clusters).

    compute-sanitizer --tool memcheck --error-exitcode 9 python bench/sanitize_ops.py
"""
import dataclasses
import sys
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast import reference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ops import environment  # noqa: E402


def run_every_op(backend: str, device: torch.device) -> None:
    for batch, shape in ((1, (3, 7, 5)), (5, (3, 33, 17)), (3, (3, 64, 32))):
        keys = reference.derive_keys(batch, range(batch)).to(device)
        xp = torch.randn(batch, *shape, device=device)
        mom = torch.randn_like(xp)
        grad = torch.randn_like(xp)
        flags = pf.StepFlags(torch.arange(batch, device=device) % 2 == 0, torch.arange(batch, device=device) % 3 != 1,
                             torch.full((batch,), 0.01, device=device),
                             torch.arange(batch, device=device, dtype=torch.int32) % 5)
        lo, hi = torch.full((3,), -2.0, device=device), torch.full((3,), 2.0, device=device)
        for norm in ("l1mean", "l2sq"):
            for pixel_masks in (False, True):
                constants = pf.BatchConstants(keys, lo, hi, 0.6, 5, norm, pixel_masks)
                pf.ops.fade_step_(xp, mom, grad, flags, constants, backend=backend)
                mask_ids = pf.ops.fade_mask_ids(keys, shape, 5, pixel_masks, backend=backend)
                with_ids = dataclasses.replace(constants, mask_ids=mask_ids)
                pf.ops.fade_step_(xp, mom, grad, flags, with_ids, backend=backend)  # what protect() runs
        pf.ops.fade_noise(keys, shape, backend=backend)
    torch.cuda.synchronize()


def main() -> None:
    device = torch.device("cuda")
    runs = [(name, None) for name, status in pf.backends().items() if name != "reference" and status.cuda]
    if any(name == "cpp" for name, _ in runs) and torch.cuda.get_device_capability()[0] >= 9:
        runs.append(("cpp", "cluster"))
    for backend, variant in runs:
        with environment({} if variant is None else {"PIXELFADE_CUDA_STEP": variant}):
            run_every_op(backend, device)
        print(f"{backend}{'' if variant is None else ' (' + variant + ')'}: ran every op")


if __name__ == "__main__":
    main()
