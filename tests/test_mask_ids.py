"""fade_step_ with materialised mask ids (the optional ``mask_ids`` argument), on every backend that runs here.

Two properties: ids from ``fade_mask_ids`` give the same bits as letting the step draw them from the keys, and
arbitrary ids are what the step obeys (so a kernel that ignored the argument would fail).
"""
import pytest
import torch

import pixelfade_fast as pf
from helpers import assert_close_report
from op_backends import backend_cases
from pixelfade_fast import reference as R

# (C, H, W): odd sizes, a pixel count that is not a multiple of any tile, a single pixel.
SHAPES = [(3, 7, 5), (3, 16, 9), (1, 1, 1)]
# Every fast backend this machine runs, each C++ CUDA step variant as its own case; the reference checks itself
# against the drawn ids too.
BACKENDS = backend_cases(names=("reference", "cpp", "triton"), variants=True)


def inputs(batch, shape, device, generator, num_masks):
    channels = shape[0]
    args = dict(
        xp=1.3 * torch.randn(batch, *shape, generator=generator),
        mom=torch.randn(batch, *shape, generator=generator),
        grad=torch.randn(batch, *shape, generator=generator),
        do_co=torch.rand(batch, generator=generator) < 0.5,
        do_pro=torch.ones(batch, dtype=torch.bool),  # every image replaces: the ids decide everything
        beta=torch.full((batch,), 0.03),
        mask_idx=torch.randint(0, num_masks, (batch,), generator=generator, dtype=torch.int32),
        keys=torch.randint(-(2**63), 2**63 - 1, (batch, 4), generator=generator, dtype=torch.int64),
        lo=torch.full((channels,), -1.5), hi=torch.full((channels,), 1.5))
    return {name: value.to(device) for name, value in args.items()}


def step(backend, args, num_masks, pixel_masks, mask_ids=None):
    xp, mom = args["xp"].clone(), args["mom"].clone()
    flags = pf.StepFlags(args["do_co"], args["do_pro"], args["beta"], args["mask_idx"])
    constants = pf.BatchConstants(args["keys"], args["lo"], args["hi"], 0.6, num_masks, "l1mean", pixel_masks,
                                  mask_ids)
    pf.ops.fade_step_(xp, mom, args["grad"], flags, constants, backend=backend)
    return xp, mom


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_materialised_ids_give_the_same_bits_as_drawn_ids(backend, pixel_masks):
    device, backend = backend.device, backend.name
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for shape in SHAPES:
        args = inputs(3, shape, device, generator, num_masks=5)
        ids = pf.ops.fade_mask_ids(args["keys"], shape, 5, pixel_masks, backend=backend)
        drawn = step(backend, args, 5, pixel_masks)
        read = step(backend, args, 5, pixel_masks, ids)
        assert torch.equal(read[0], drawn[0]) and torch.equal(read[1], drawn[1]), f"{backend} {shape}"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_the_step_obeys_the_ids_it_is_given(backend):
    """Ids that are not the keys' (random, or all equal to mask_idx): the replaced elements follow them."""
    device, backend = backend.device, backend.name
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for shape in SHAPES:
        args = inputs(4, shape, device, generator, num_masks=3)
        random_ids = torch.randint(0, 3, (4, *shape), generator=generator, dtype=torch.uint8).to(device)
        every_element = args["mask_idx"].to(torch.uint8).reshape(-1, 1, 1, 1).expand(4, *shape).contiguous()
        for name, ids in (("random ids", random_ids), ("ids all equal to mask_idx", every_element)):
            ours = step(backend, args, 3, False, ids)
            expected = step("reference", args, 3, False, ids)
            assert_close_report(ours[0], expected[0], 1e-5, f"{backend} {shape} {name}: xp")
            assert_close_report(ours[1], expected[1], 1e-5, f"{backend} {shape} {name}: mom")
        noise = R.fade_noise(args["keys"], shape).clamp(-1.5, 1.5)
        replaced_everywhere = step(backend, args, 3, False, every_element)[0]
        assert (replaced_everywhere - noise).abs().max().item() <= 1e-6, "every element should be η"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_bad_mask_ids_are_rejected_by_name(backend):
    device, backend = backend.device, backend.name
    args = inputs(2, (3, 4, 4), device, torch.Generator().manual_seed(0), num_masks=5)
    with pytest.raises(TypeError, match="mask_ids"):
        step(backend, args, 5, False, torch.zeros(2, 3, 4, 4, dtype=torch.int32, device=device))
    with pytest.raises(ValueError, match="mask_ids"):
        step(backend, args, 5, False, torch.zeros(2, 1, 4, 4, dtype=torch.uint8, device=device))
