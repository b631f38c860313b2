"""Every fast backend's ops (the C++ ops torch.ops.pixelfade.*, the Triton kernels torch.ops.pixelfade_triton.*)
against the pure-PyTorch reference, on fresh random inputs.

Cases (tests/op_backends.py): the C++ CPU kernels; the Triton kernels under Triton's CPU interpreter on tiny
images, with default and with small tiles; and where a GPU is present (tests marked ``gpu``) the CUDA kernels of
both on realistic shapes, each C++ CUDA step variant as its own case. Backend-specific checks (the extension's
build info and fake kernels, tl.randint4x, Triton's launch slicing and import without triton, the C++ CUDA step
variants) follow the shared ones, named after their backend.
"""
import dataclasses
import importlib.util
import inspect
import itertools
import subprocess
import sys

import pytest
import torch

from helpers import assert_close_report, load_rng_vectors
from op_backends import Backend, backend_cases
from op_inputs import INDEX_EDGES, UINT64_EDGES, as_int64, random_keys, step_inputs
import pixelfade_fast as pf
from pixelfade_fast import _cpp
from pixelfade_fast import reference as R
from pixelfade_fast.step_args import BatchConstants, StepFlags

# DESIGN ("Tests"): fp32 steps agree to ||out - ref|| / ||ref|| < 1e-5; Philox words bit-exact; mask ids exact;
# NaN never passes (assert_close_report wants NaNs in the same places). η is float32 on every backend and may
# differ in the last ulp of log/cos, so it is held to an absolute 1e-6, and in float64 steps so are the
# elements it replaces; the kept float64 elements and mom are held to float64's own precision.
TOLERANCE = {
    torch.float32: dict(xp=1e-5, xp_kept=1e-5, mom=1e-5),
    torch.float64: dict(xp=1e-7, xp_kept=1e-10, mom=1e-12),
}
NOISE_ATOL = 1e-6

# CPU: B = 1, odd sizes, a channel of one pixel; the C++ case also several 4096-element chunks with a tail and a
# channel boundary inside a chunk (too slow for Triton's interpreter, which gets 3x16x8 instead).
# CUDA: the gallery's batch (vector path), odd N (scalar path), 16-byte packs that straddle channels (HW = 3).
SHAPES = {
    ("cpp", "cpu"): [(4, 3, 7, 5), (1, 3, 7, 5), (3, 2, 64, 65), (2, 5, 1, 1)],
    ("triton", "cpu"): [(4, 3, 7, 5), (3, 3, 16, 8), (1, 3, 7, 5), (2, 1, 1, 1)],
    ("cpp", "cuda"): [(64, 3, 256, 128), (1, 3, 256, 128), (5, 3, 37, 19), (2, 4, 1, 3), (2, 3, 5, 3), (1, 1, 1, 1)],
}
SHAPES[("triton", "cuda")] = SHAPES[("cpp", "cuda")]
NUM_MASKS = (5, 255, 1, 7, 2)
ORDER = ["xp", "mom", "grad", "do_co", "do_pro", "beta", "mask_idx", "keys", "lo", "hi"]

BACKENDS = backend_cases()
TILED = backend_cases(tiles=True)  # Triton with default and small tiles
STEP_BACKENDS = backend_cases(tiles=True, variants=True)  # and each C++ CUDA step variant
CPP_CPU = backend_cases(names=("cpp",), devices=("cpu",))  # the extension's own checks


def shapes(backend: Backend):
    return SHAPES[(backend.name, backend.device)]


@pytest.fixture
def generator():
    """A generator with a fresh seed, printed so that a failure can be replayed."""
    seed = torch.seed() % 2**31
    print(f"generator seed {seed}")
    return torch.Generator().manual_seed(seed)


def key_index_pairs(device, generator, count=500):
    """Every edge key with every edge index, plus random keys over the whole 64-bit range and indices past 2**32."""
    edge_keys = torch.tensor([as_int64(k) for k in UINT64_EDGES])
    edge_index = torch.tensor(INDEX_EDGES)
    keys = torch.cat([edge_keys.repeat_interleave(len(INDEX_EDGES)),
                      torch.randint(-(2**63), 2**63 - 1, (count,), generator=generator)])
    index = torch.cat([edge_index.repeat(len(UINT64_EDGES)), torch.randint(0, 2**62, (count,), generator=generator)])
    return keys.to(device), index.to(device)


# --------------------------------------------------------------------------------------------- Philox and RNG

@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_philox_words_bit_exact_vs_reference(backend, generator):
    """Without and with the counter's upper words (contract v2 fills them)."""
    keys, index = key_index_pairs(backend.device, generator)
    words = backend.philox_words(keys, index)
    expected = torch.stack(R.philox4x32(keys, index), dim=1)
    assert words.dtype == torch.int64 and words.shape == (keys.numel(), 4) and words.device == keys.device
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ from the reference"
    high = keys.roll(7)  # every uint64 edge as an upper counter word too
    words = backend.philox_words(keys, index, high)
    expected = torch.stack(R.philox4x32(keys, index, high), dim=1)
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ (upper words set)"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_philox_words_known_answer_vectors(backend):
    rows = load_rng_vectors()["philox"]
    keys = torch.tensor([as_int64(int(r["key"])) for r in rows], device=backend.device)
    index = torch.tensor([int(r["index"]) for r in rows], device=backend.device)
    assert backend.philox_words(keys, index).tolist() == [r["words"] for r in rows]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_noise_and_mask_ids_known_answer_vectors(backend):
    """η and mask ids (I = 5) of the vectors whose index falls inside a 1x64x64 image."""
    rows = [r for r in load_rng_vectors()["philox"] if int(r["index"]) < 4096]
    keys = torch.tensor([[as_int64(int(r["key"])), 0] * 2 for r in rows], device=backend.device)  # v1 (K, 0, M, 0)
    noise = backend.fade_noise(keys, (1, 64, 64)).flatten(1).cpu()
    ids = backend.fade_mask_ids(keys, (1, 64, 64), 5, False).flatten(1).cpu()
    for row, r in enumerate(rows):
        assert abs(noise[row, int(r["index"])].item() - r["normal"]) <= NOISE_ATOL, r
        assert ids[row, int(r["index"])].item() == r["mask_id_5"], r


@pytest.mark.parametrize("backend", TILED, indirect=True)
def test_fade_noise_matches_reference(backend, generator):
    for batch, channels, height, width in shapes(backend):
        keys = random_keys(batch, generator).to(backend.device)
        keys[0, :2] = as_int64(2**64 - 1)
        noise = backend.fade_noise(keys, (channels, height, width))
        expected = R.fade_noise(keys, (channels, height, width))
        assert noise.dtype == torch.float32 and noise.shape == expected.shape and torch.isfinite(noise).all()
        error = (noise - expected).abs().max().item()
        assert error <= NOISE_ATOL, f"max |η - reference| = {error:.3g} for shape {(batch, channels, height, width)}"


@pytest.mark.parametrize("backend", TILED, indirect=True)
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_mask_ids_match_reference_exactly(backend, pixel_masks, generator):
    cases = [(shapes(backend)[i % len(shapes(backend))], num_masks) for i, num_masks in enumerate(NUM_MASKS)]
    for (batch, channels, height, width), num_masks in cases:
        keys = random_keys(batch, generator).to(backend.device)
        ids = backend.fade_mask_ids(keys, (channels, height, width), num_masks, pixel_masks)
        expected = R.fade_mask_ids(keys, (channels, height, width), num_masks, pixel_masks)
        assert ids.dtype == torch.uint8
        assert torch.equal(ids, expected), f"{int((ids != expected).sum())} ids differ (I={num_masks})"
        assert int(ids.max()) < num_masks
        if pixel_masks:
            assert torch.equal(ids, ids[:, :1].expand_as(ids)), "pixel masks must share one id across channels"


# --------------------------------------------------------------------------------------------------- fade_step_

def call_step(step, a, alpha=0.6, num_masks=5, norm="l1mean", pixel_masks=False, mask_ids=None):
    extra = () if mask_ids is None else (mask_ids,)
    step(*[a[name] for name in ORDER], alpha, num_masks, norm, pixel_masks, *extra)


def run_both(backend, args, alpha=0.6, num_masks=5, norm="l1mean", pixel_masks=False):
    """(ours, reference): each a dict of the arguments after the step, run on its own copy."""
    ours = {k: v.clone() for k, v in args.items()}
    ref = {k: v.clone() for k, v in args.items()}
    call_step(backend.fade_step_, ours, alpha, num_masks, norm, pixel_masks)
    call_step(R.fade_step_, ref, alpha, num_masks, norm, pixel_masks)
    return ours, ref


def assert_step_matches(ours, ref, args, num_masks, pixel_masks, name):
    """xp and mom within TOLERANCE; in float64 the elements replaced by η within η's tolerance and the kept ones
    within float64's; mom unchanged bit for bit without CO; xp inside [lo, hi]."""
    dtype = args["xp"].dtype
    tolerance = TOLERANCE[dtype]
    assert_close_report(ours["mom"], ref["mom"], tolerance["mom"], f"{name}: mom")
    assert_close_report(ours["xp"], ref["xp"], tolerance["xp"], f"{name}: xp")
    if dtype == torch.float64:
        ids = R.fade_mask_ids(args["keys"], tuple(args["xp"].shape[1:]), num_masks, pixel_masks)
        per_image = (-1, 1, 1, 1)
        replaced = args["do_pro"].reshape(per_image) & (ids.int() == args["mask_idx"].reshape(per_image))
        assert_close_report(ours["xp"][~replaced], ref["xp"][~replaced], tolerance["xp_kept"], f"{name}: xp (kept)")
        if replaced.any():
            error = (ours["xp"][replaced] - ref["xp"][replaced]).abs().max().item()
            assert error <= NOISE_ATOL, f"{name}: replaced elements differ from the reference by {error:.3g}"
    keep = ~args["do_co"]
    assert torch.equal(ours["mom"][keep], args["mom"][keep]), f"{name}: mom changed without CO"
    lo = args["lo"].to(dtype).view(1, -1, 1, 1)
    hi = args["hi"].to(dtype).view(1, -1, 1, 1)
    assert bool(((ours["xp"] >= lo) & (ours["xp"] <= hi)).all()), f"{name}: xp outside [lo, hi]"


# float64 with Triton's default tiles only: the tiles' partials and tails do not depend on the dtype, and the
# interpreter is slow.
STEP_DTYPES = [pytest.param(case.values[0], dtype, id=f"{case.id}-{str(dtype)[6:]}", marks=case.marks)
               for dtype in (torch.float32, torch.float64) for case in STEP_BACKENDS
               if dtype == torch.float32 or case.values[0].tiles != "small"]


@pytest.mark.parametrize("backend, dtype", STEP_DTYPES, indirect=["backend"])
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_step_matches_reference(backend, dtype, norm, pixel_masks, generator):
    for shape in shapes(backend):
        args = step_inputs(shape, dtype, backend.device, generator)
        ours, ref = run_both(backend, args, 0.6, 5, norm, pixel_masks)
        assert_step_matches(ours, ref, args, 5, pixel_masks, f"{shape} {dtype} {norm} pixel_masks={pixel_masks}")


@pytest.mark.parametrize("backend", STEP_BACKENDS, indirect=True)
def test_fade_step_non_contiguous_inputs_update_in_place(backend, generator):
    """channels_last xp, mom with a transpose's strides, a sliced grad, strided flags and keys with strides
    (1, B): results land in the caller's tensors."""
    device = backend.device
    args = step_inputs((4, 3, 9, 6), torch.float32, device, generator)
    args["grad"] = torch.randn(4, 3, 9, 12, generator=generator).to(device)[..., ::2]
    args["do_co"] = torch.stack([args["do_co"], args["do_co"]], 1)[:, 0]
    ours = {k: v.clone() for k, v in args.items()}
    ours["xp"] = ours["xp"].to(memory_format=torch.channels_last)
    ours["mom"] = ours["mom"].transpose(2, 3).contiguous().transpose(2, 3)
    ours["grad"], ours["do_co"] = args["grad"], args["do_co"]
    ours["keys"] = args["keys"].t().contiguous().t()
    assert not any(ours[name].is_contiguous() for name in ("xp", "mom", "grad", "do_co", "keys"))
    xp_storage, mom_storage = ours["xp"].data_ptr(), ours["mom"].data_ptr()
    call_step(backend.fade_step_, ours, 0.6, 5, "l2sq", True)
    ref = {k: v.clone() for k, v in args.items()}
    call_step(R.fade_step_, ref, 0.6, 5, "l2sq", True)
    assert ours["xp"].data_ptr() == xp_storage and ours["mom"].data_ptr() == mom_storage
    assert ours["xp"].is_contiguous(memory_format=torch.channels_last)
    assert_step_matches(ours, ref, args, 5, True, "non-contiguous")


@pytest.mark.parametrize("backend", STEP_BACKENDS, indirect=True)
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
def test_fade_step_zero_gradient_gives_no_nan(backend, norm, generator):
    args = step_inputs((3, 3, 7, 5), torch.float32, backend.device, generator)
    args["grad"].zero_()
    args["do_co"].fill_(True)
    ours, ref = run_both(backend, args, norm=norm)
    assert torch.isfinite(ours["xp"]).all() and torch.isfinite(ours["mom"]).all()
    assert torch.equal(ours["mom"], 0.6 * args["mom"]), "a zero gradient must leave mom = alpha * mom exactly"
    assert_step_matches(ours, ref, args, 5, False, f"zero gradient {norm}")


@pytest.mark.parametrize("backend", STEP_BACKENDS, indirect=True)
def test_fade_step_propagates_nan_like_the_reference(backend, generator):
    """A NaN in xp stays NaN through the clamp; a NaN in G poisons that image's norm, as in the reference."""
    device = backend.device
    args = step_inputs((4, 3, 7, 5), torch.float32, device, generator)
    args["do_co"] = torch.tensor([False, True, False, False], device=device)
    args["do_pro"].fill_(False)
    args["xp"][0, 1, 2, 3] = float("nan")
    args["grad"][1, 0, 0, 0] = float("nan")
    args["grad"][2, 0, 0, 0] = float("nan")  # no CO for image 2: its grad is never read
    ours, ref = run_both(backend, args)
    assert torch.isnan(ours["xp"][0, 1, 2, 3]) and torch.isnan(ours["xp"][1]).all()
    assert torch.isfinite(ours["xp"][2]).all()
    assert_close_report(ours["xp"], ref["xp"], TOLERANCE[torch.float32]["xp"], "xp with NaN")
    assert_close_report(ours["mom"], ref["mom"], TOLERANCE[torch.float32]["mom"], "mom with NaN")


@pytest.mark.parametrize("backend", STEP_BACKENDS, indirect=True)
def test_fade_step_never_reads_the_gradient_of_images_without_co(backend, generator):
    """Every image without CO has an all-NaN gradient, next to a zero-gradient image with CO and a NaN in xp
    where PRO may replace it: the result is the reference's, NaNs in the same places."""
    args = step_inputs(shapes(backend)[0], torch.float32, backend.device, generator)
    args["grad"][0] = 0.0
    args["do_co"][0] = True
    args["xp"][1, 0, 0, 0] = float("nan")
    args["grad"][~args["do_co"]] = float("nan")
    ours, ref = run_both(backend, args)
    assert torch.isfinite(ours["mom"][0]).all() and torch.isfinite(ours["xp"][0]).all()
    assert_close_report(ours["xp"], ref["xp"], TOLERANCE[torch.float32]["xp"], "xp with zero grad / NaN")
    assert_close_report(ours["mom"], ref["mom"], TOLERANCE[torch.float32]["mom"], "mom with zero grad / NaN")


@pytest.mark.parametrize("backend", STEP_BACKENDS, indirect=True)
def test_fade_step_is_bit_identical_across_runs_and_thread_counts(backend, generator):
    """The largest shape of the case, every image reducing its gradient; the second run on one thread (the C++
    CPU chunk layout does not depend on the thread count)."""
    shape = max(shapes(backend), key=lambda s: torch.Size(s).numel())
    args = step_inputs(shape, torch.float32, backend.device, generator)
    args["do_co"].fill_(True)
    first = {k: v.clone() for k, v in args.items()}
    second = {k: v.clone() for k, v in args.items()}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        call_step(backend.fade_step_, first)
        torch.set_num_threads(1)
        call_step(backend.fade_step_, second)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first["xp"], second["xp"]) and torch.equal(first["mom"], second["mom"])


# ----------------------------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_bad_arguments_raise_errors_naming_the_argument(backend):
    good = step_inputs((2, 3, 4, 4), torch.float32, backend.device, torch.Generator().manual_seed(0))
    cases = [
        ("xp", dict(xp=good["xp"].int()), TypeError),
        ("xp", dict(xp=good["xp"][0]), ValueError),
        ("mom", dict(mom=good["mom"].double()), TypeError),
        ("grad", dict(grad=good["grad"][:, :2]), ValueError),
        ("do_co", dict(do_co=good["do_co"].int()), TypeError),
        ("do_pro", dict(do_pro=good["do_pro"][:1]), ValueError),
        ("beta", dict(beta=good["beta"].double()), TypeError),
        ("mask_idx", dict(mask_idx=good["mask_idx"].long()), TypeError),
        ("keys", dict(keys=good["keys"][:, :1]), ValueError),
        ("keys", dict(keys=good["keys"].int()), TypeError),
        ("lo", dict(lo=good["lo"][:2]), ValueError),
        ("hi", dict(hi=good["hi"].double()), TypeError),
    ]
    if backend.device == "cuda":
        cases.append(("do_co", dict(do_co=good["do_co"].cpu()), ValueError))
    for name, change, error in cases:  # the C++ ops prefix the op's name, "pixelfade::fade_step_: "
        with pytest.raises(error, match=f"(^|: ){name} must"):
            call_step(backend.fade_step_, {**good, **change})
    with pytest.raises(ValueError, match="(^|: )norm must"):
        call_step(backend.fade_step_, good, norm="l3")
    with pytest.raises(ValueError, match=r"(^|: )num_masks must be in \[1, 255\]"):
        call_step(backend.fade_step_, good, num_masks=0)
    keys = good["keys"]
    with pytest.raises(ValueError, match=r"(^|: )num_masks must be in \[1, 255\]"):
        backend.fade_mask_ids(keys, (3, 4, 4), 256)
    with pytest.raises(ValueError, match=r"(^|: )num_masks must be in \[1, 255\]"):
        backend.fade_mask_ids(keys, (3, 4, 4), 0)
    with pytest.raises(ValueError, match="(^|: )shape must"):
        backend.fade_noise(keys, (4, 4))
    with pytest.raises(ValueError, match=r"keys must .*shape \[B, 4\]"):
        backend.fade_noise(keys[:, :2], (3, 4, 4))


def structures(a, alpha=0.6, num_masks=5, norm="l1mean", pixel_masks=False, mask_ids=None):
    """The public op's (flags, constants) holding the arguments ``a`` (step_inputs)."""
    return (StepFlags(a["do_co"], a["do_pro"], a["beta"], a["mask_idx"]),
            BatchConstants(a["keys"], a["lo"], a["hi"], alpha, num_masks, norm, pixel_masks, mask_ids))


@pytest.mark.parametrize("backend", backend_cases(names=("reference", "cpp", "triton")), indirect=True)
def test_public_fade_step_runs_the_backend_on_the_structures_fields(backend, generator):
    """ops.fade_step_(xp, mom, grad, flags, constants, backend=...) gives the bits of that backend's op called
    with the fifteen arguments flat, for each norm and mask kind, drawn and materialised ids."""
    args = step_inputs((4, 3, 7, 5), torch.float32, backend.device, generator)
    for norm, pixel_masks, materialise in itertools.product(("l1mean", "l2sq"), (False, True), (False, True)):
        mask_ids = R.fade_mask_ids(args["keys"], (3, 7, 5), 5, pixel_masks) if materialise else None
        flat = {k: v.clone() for k, v in args.items()}
        call_step(backend.fade_step_, flat, 0.7, 5, norm, pixel_masks, mask_ids)
        public = {k: v.clone() for k, v in args.items()}
        pf.ops.fade_step_(public["xp"], public["mom"], public["grad"],
                          *structures(public, 0.7, 5, norm, pixel_masks, mask_ids), backend=backend.name)
        name = f"{norm} pixel_masks={pixel_masks} materialised={materialise}"
        assert torch.equal(public["xp"], flat["xp"]) and torch.equal(public["mom"], flat["mom"]), name


def test_public_fade_step_checks_each_field_by_name():
    """The wrapper checks the structures (op_checks), so even the reference backend, which checks only the
    norm itself, refuses a bad field by its name; other objects than the structures are refused."""
    good = step_inputs((2, 3, 4, 4), torch.float32, "cpu", torch.Generator().manual_seed(0))
    xp, mom, grad = good["xp"], good["mom"], good["grad"]
    for field, change, error in (("beta", dict(beta=good["beta"].double()), TypeError),
                                 ("mask_idx", dict(mask_idx=good["mask_idx"][:1]), ValueError),
                                 ("lo", dict(lo=good["lo"][:2]), ValueError)):
        with pytest.raises(error, match=f"^{field} must"):
            pf.ops.fade_step_(xp, mom, grad, *structures({**good, **change}), backend="reference")
    flags, constants = structures(good)
    for bad, message in ((dict(mask_ids=torch.zeros(2, 3, 4, 4, dtype=torch.int32)), "^mask_ids must"),
                         (dict(num_masks=256), r"^num_masks must be in \[1, 255\]"),
                         (dict(alpha=1.0), r"^alpha must be in \[0, 1\)"), (dict(norm="l3"), "^norm must")):
        with pytest.raises((TypeError, ValueError), match=message):
            pf.ops.fade_step_(xp, mom, grad, flags, dataclasses.replace(constants, **bad), backend="reference")
    with pytest.raises(TypeError, match="^flags must be a StepFlags, got tuple"):
        pf.ops.fade_step_(xp, mom, grad, tuple(vars(flags).values()), constants, backend="reference")
    with pytest.raises(TypeError, match="^constants must be a BatchConstants, got dict"):
        pf.ops.fade_step_(xp, mom, grad, flags, vars(constants), backend="reference")


@pytest.mark.parametrize("backend", CPP_CPU, indirect=True)
def test_cpp_specific_argument_errors(backend):
    keys = random_keys(2, torch.Generator().manual_seed(0))
    ops = backend.ops
    with pytest.raises(TypeError, match=": keys must"):
        ops.fade_noise(keys.float(), [3, 4, 4])
    with pytest.raises(ValueError, match="key and index must have the same shape"):
        ops.philox_words(keys[:, 0], keys[:1, 0])
    with pytest.raises(TypeError, match=": index must"):
        ops.philox_words(keys[:, 0], keys[:, 0].int())
    with pytest.raises(ValueError, match="counter_high must have key's shape"):
        ops.philox_words(keys[:, 0], keys[:, 1], keys[:1, 1])


@pytest.mark.parametrize("backend", backend_cases(names=("triton",)), indirect=True)
def test_triton_specific_argument_errors(backend):
    kernels = backend.ops
    keys = random_keys(4, torch.Generator().manual_seed(12)).to(backend.device)
    with pytest.raises(ValueError, match="keys must be an int64 tensor"):
        kernels.fade_noise(keys.float(), (3, 4, 4))
    with pytest.raises(ValueError, match="at most 1073741824 elements per image"):
        kernels.fade_noise(keys, (1, 2**15, 2**15 + 1))
    with pytest.raises(ValueError, match="1-D int64"):
        kernels.philox_words(keys, keys[:, 0])
    with pytest.raises(ValueError, match="1-D int64"):
        kernels.philox_words(keys[:, 0], keys[:, 0].int())
    with pytest.raises(ValueError, match="one shape and device"):
        kernels.philox_words(keys[:, 0], keys[:3, 1])
    with pytest.raises(ValueError, match="one shape and device"):
        kernels.philox_words(keys[:, 0], keys[:, 1], keys[:3, 2])


# ------------------------------------------------------------------------------ torch.library and torch.compile

@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_opcheck_every_op(backend, generator):
    """The full torch.library.opcheck, except for Triton under the interpreter: there only the schema and
    autograd registration, because torch.library.wrap_triton hands an interpreted kernel back unwrapped, so
    under FakeTensorMode it would be launched on fake tensors (the full check runs on CUDA)."""
    a = step_inputs((3, 3, 5, 4), torch.float32, backend.device, generator)
    keys, ops = a["keys"], backend.library
    step_args = tuple(a[name] for name in ORDER)
    samples = [
        (ops.fade_step_.default, step_args + (0.6, 5, "l2sq", True)),
        (ops.fade_step_.default, step_args + (0.6, 5, "l1mean", False, R.fade_mask_ids(keys, (3, 5, 4), 5, False))),
        (ops.fade_noise.default, (keys, [3, 5, 4])),
        (ops.fade_mask_ids.default, (keys, [3, 5, 4], 5, True)),
        (ops.fade_mask_ids.default, (keys, [3, 5, 4], 5, False)),
        (ops.philox_words.default, (keys[:, 0].contiguous(), keys[:, 1].abs())),
        (ops.philox_words.default, (keys[:, 0].contiguous(), keys[:, 1].abs(), keys[:, 3].contiguous())),
    ]
    interpreted = backend.name == "triton" and backend.device == "cpu"
    utils = ("test_schema", "test_autograd_registration") if interpreted else None
    for op, args in samples:
        if utils:
            torch.library.opcheck(op, args, test_utils=utils)
        else:
            torch.library.opcheck(op, args)


@pytest.mark.parametrize("backend", CPP_CPU, indirect=True)
def test_cpp_fake_kernels_give_output_metadata_on_meta_tensors(backend):
    ops = backend.ops
    keys = torch.empty(3, 4, dtype=torch.int64, device="meta")
    noise = ops.fade_noise(keys, [3, 8, 4])
    ids = ops.fade_mask_ids(keys, [3, 8, 4], 5, True)
    words = ops.philox_words(keys[:, 0], keys[:, 1])
    assert (noise.shape, noise.dtype, noise.device.type) == ((3, 3, 8, 4), torch.float32, "meta")
    assert (ids.shape, ids.dtype) == ((3, 3, 8, 4), torch.uint8)
    assert (words.shape, words.dtype) == ((3, 4), torch.int64)


# Triton's interpreter cannot run under torch.compile (see test_opcheck_every_op): compiled on CUDA only.
COMPILABLE = backend_cases(names=("cpp",)) + backend_cases(names=("triton",), devices=("cuda",))


@pytest.mark.parametrize("backend", COMPILABLE, indirect=True)
def test_fade_step_runs_under_torch_compile_fullgraph(backend, generator):
    """A step that draws the mask ids, then one that reads them materialised (as protect() does), and fade_noise:
    the compiled graph gives the eager bits, and the reference's."""
    ops = backend.library
    shape = (4, 3, 7, 5) if backend.device == "cpu" else SHAPES[("cpp", "cuda")][0]
    args = step_inputs(shape, torch.float32, backend.device, generator)

    def two_steps(a):
        ids = ops.fade_mask_ids(a["keys"], list(shape[1:]), 5, False)
        for mask_ids in (None, ids):
            call_step(ops.fade_step_, a, 0.6, 5, "l1mean", False, mask_ids)
        return a["xp"] * 2

    torch._dynamo.reset()
    compiled_in = {k: v.clone() for k, v in args.items()}
    eager_in = {k: v.clone() for k, v in args.items()}
    doubled = torch.compile(two_steps, fullgraph=True)(compiled_in)
    expected = two_steps(eager_in)
    assert torch.equal(doubled, expected)
    assert torch.equal(compiled_in["xp"], eager_in["xp"]) and torch.equal(compiled_in["mom"], eager_in["mom"])
    ref = {k: v.clone() for k, v in args.items()}
    for _ in range(2):
        call_step(R.fade_step_, ref)
    assert_step_matches(compiled_in, ref, args, 5, False, "torch.compile, two steps")
    noise = torch.compile(lambda keys: ops.fade_noise(keys, list(shape[1:])), fullgraph=True)(args["keys"])
    assert (noise - R.fade_noise(args["keys"], shape[1:])).abs().max().item() <= NOISE_ATOL


# ------------------------------------------------------------------------------------------------- C++ only

@pytest.mark.parametrize("backend", CPP_CPU, indirect=True)
def test_cpp_build_info_describes_the_loaded_extension(backend):
    info = _cpp.build_info()
    assert set(info) == {"cuda", "cuda_archs", "cuda_version", "openmp", "torch_version"}
    assert info["cuda"] == _cpp.has_cuda_kernels()
    assert (info["cuda_version"] is None) == (not info["cuda"])
    assert all(arch.startswith("sm_") for arch in info["cuda_archs"]) and bool(info["cuda_archs"]) == info["cuda"]
    assert torch.__version__.startswith(info["torch_version"]), "extension built against another torch"
    assert _cpp.unavailable_reason() == ""


# ------------------------------------------------------------------------------------------------- Triton only

@pytest.mark.parametrize("backend", backend_cases(names=("triton",)), indirect=True)
def test_triton_philox_words_equal_tl_randint4x(backend, generator):
    """Triton's own tl.randint4x(key, index) is the other side of the bit-exact comparison."""
    import triton
    import triton.language as tl

    @triton.jit
    def randint4x_kernel(key_ptr, index_ptr, out_ptr, count, BLOCK: tl.constexpr):
        row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = row < count
        key = tl.load(key_ptr + row, mask=inside, other=0)
        index = tl.load(index_ptr + row, mask=inside, other=0)
        r0, r1, r2, r3 = tl.randint4x(key, index)
        tl.store(out_ptr + row * 4, r0.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
        tl.store(out_ptr + row * 4 + 1, r1.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
        tl.store(out_ptr + row * 4 + 2, r2.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
        tl.store(out_ptr + row * 4 + 3, r3.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)

    keys, index = key_index_pairs(backend.device, generator, count=300)
    words = backend.philox_words(keys, index)
    triton_words = torch.empty_like(words)
    randint4x_kernel[(triton.cdiv(keys.numel(), 128),)](keys, index, triton_words, keys.numel(), BLOCK=128)
    assert torch.equal(words, triton_words), f"{int((words != triton_words).any(1).sum())} rows differ from tl.randint4x"


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_alpha_is_passed_to_the_kernel_as_float64():
    """Triton types a float argument fp32 unless it is annotated; a stringified annotation (from
    ``from __future__ import annotations``) silently loses that, rounding alpha for float64 images."""
    step_module = importlib.import_module("pixelfade_fast.kernels.fade_step")
    annotation = inspect.signature(step_module.fade_step_kernel.fn).parameters["alpha"].annotation
    assert annotation == "fp64", f"alpha is annotated {annotation!r}"


@pytest.mark.parametrize("backend", backend_cases(names=("triton",)), indirect=True)
def test_triton_batches_beyond_one_launch_are_split(backend, monkeypatch, generator):
    """Batches larger than one launch's grid rows run in slices (forced here with 2 images per launch)."""
    monkeypatch.setattr(importlib.import_module("pixelfade_fast.kernels.launch"), "MAX_IMAGES_PER_LAUNCH", 2)
    shape = (5, 3, 7, 5)
    args = step_inputs(shape, torch.float32, backend.device, generator)
    ours, ref = run_both(backend, args, 0.6, 5, "l1mean", True)
    assert_step_matches(ours, ref, args, 5, True, "sliced launches")
    keys = args["keys"]
    assert torch.equal(backend.fade_mask_ids(keys, shape[1:], 5), R.fade_mask_ids(keys, shape[1:], 5, False))
    assert (backend.fade_noise(keys, shape[1:]) - R.fade_noise(keys, shape[1:])).abs().max().item() <= NOISE_ATOL


def test_triton_availability_is_reported_per_device():
    from pixelfade_fast import kernels as K
    assert K.available("cpu") == (K.unavailable_reason("cpu") == "")
    assert K.available("cuda") == (torch.cuda.is_available() and K.unavailable_reason("cuda") == "")
    assert not K.available("meta") and "CUDA" in K.unavailable_reason("meta")


def test_package_imports_without_triton():
    """Without triton the package still imports, reports why the Triton kernels are unavailable, and they say so."""
    script = ("import sys; sys.modules['triton'] = None\n"
              "import torch\n"
              "from pixelfade_fast import kernels as K\n"
              "assert not K.available() and not K.available('cuda'), 'available without triton'\n"
              "assert 'triton is not importable' in K.unavailable_reason('cpu'), K.unavailable_reason('cpu')\n"
              "try:\n"
              "    K.fade_noise(torch.zeros(1, 4, dtype=torch.int64), (1, 2, 2))\n"
              "except RuntimeError as exc:\n"
              "    assert 'unavailable' in str(exc), exc\n"
              "else:\n"
              "    raise AssertionError('fade_noise ran without triton')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.gpu
@pytest.mark.parametrize("backend", backend_cases(names=("triton",), devices=("cuda",)), indirect=True)
def test_triton_fade_step_beyond_int32_offsets(backend):
    """B*N > 2**31: the last images' elements sit past int32 offsets; they must match the reference."""
    channels, height, width = 3, 256, 128
    batch = 2**31 // (channels * height * width) + 3
    needed = 3 * batch * channels * height * width * 4
    if torch.cuda.mem_get_info()[0] < needed + 8 * 2**30:
        pytest.skip(f"needs {needed / 2**30:.0f} GiB of free GPU memory")
    generator = torch.Generator(device="cuda").manual_seed(16)
    shape = (batch, channels, height, width)
    xp = torch.randn(shape, generator=generator, device="cuda")
    mom = torch.randn(shape, generator=generator, device="cuda")
    grad = torch.randn(shape, generator=generator, device="cuda")
    small = step_inputs((batch, channels, 1, 1), torch.float32, "cuda", torch.Generator().manual_seed(16))
    picked = [0, 1, batch - 3, batch - 2, batch - 1]
    before = {"xp": xp[picked].clone(), "mom": mom[picked].clone(), "grad": grad[picked].clone()}
    backend.fade_step_(xp, mom, grad, small["do_co"], small["do_pro"], small["beta"], small["mask_idx"],
                       small["keys"], small["lo"], small["hi"], 0.6, 5, "l1mean", True)
    ref = {**{k: v[picked] for k, v in small.items() if k not in ("lo", "hi")}, "lo": small["lo"],
           "hi": small["hi"], **before}  # images are independent: the reference runs on the picked ones alone
    call_step(R.fade_step_, ref, 0.6, 5, "l1mean", True)
    assert_close_report(xp[picked], ref["xp"], TOLERANCE[torch.float32]["xp"], "xp past int32 offsets")
    assert_close_report(mom[picked], ref["mom"], TOLERANCE[torch.float32]["mom"], "mom past int32 offsets")


# ------------------------------------------------------------------------------------------------- CUDA only

@pytest.mark.gpu
@pytest.mark.parametrize("backend", backend_cases(devices=("cuda",), variants=True), indirect=True)
@pytest.mark.parametrize("norm, pixel_masks", [("l1mean", True), ("l2sq", False)])
def test_cuda_fade_step_graph_capture_and_replay(backend, norm, pixel_masks, generator):
    shape = (8, 3, 64, 32)
    static = step_inputs(shape, torch.float32, "cuda", generator)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up (Triton compiles its kernels) outside the graph
        call_step(backend.fade_step_, {k: v.clone() for k, v in static.items()}, 0.6, 5, norm, pixel_masks)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call_step(backend.fade_step_, static, 0.6, 5, norm, pixel_masks)
    for _ in range(3):  # fresh inputs copied into the captured tensors, then replayed
        fresh = step_inputs(shape, torch.float32, "cuda", generator)
        for name, value in fresh.items():
            static[name].copy_(value)
        graph.replay()
        ref = {k: v.clone() for k, v in fresh.items()}
        call_step(R.fade_step_, ref, 0.6, 5, norm, pixel_masks)
        torch.cuda.synchronize()
        assert_step_matches(static, ref, fresh, 5, pixel_masks, "CUDA graph replay")


@pytest.mark.gpu
@pytest.mark.parametrize("backend", backend_cases(names=("cpp",), devices=("cuda",)), indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_cpp_cuda_fade_step_misaligned_storage_takes_the_scalar_path(backend, dtype, generator):
    """Contiguous tensors whose data starts one element past a 16-byte boundary cannot use vector loads."""
    shape = (4, 3, 32, 16)
    args = step_inputs(shape, dtype, "cuda", generator)
    numel = args["xp"].numel()
    ours = dict(args)
    for name in ("xp", "mom", "grad"):
        buffer = torch.empty(numel + 1, dtype=dtype, device="cuda")
        ours[name] = buffer[1:].view(shape)
        ours[name].copy_(args[name])
        assert ours[name].is_contiguous() and ours[name].data_ptr() % 16 != 0
    call_step(backend.fade_step_, ours, 0.6, 5, "l2sq", False)
    ref = {k: v.clone() for k, v in args.items()}
    call_step(R.fade_step_, ref, 0.6, 5, "l2sq", False)
    assert_step_matches(ours, ref, args, 5, False, f"misaligned {dtype}")


@pytest.mark.gpu
@pytest.mark.parametrize("backend", backend_cases(names=("cpp",), devices=("cuda",)), indirect=True)
def test_cpp_cuda_and_cpu_kernels_agree(backend, generator):
    args = step_inputs((6, 3, 40, 20), torch.float32, "cpu", generator)
    on_cpu = {k: v.clone() for k, v in args.items()}
    on_gpu = {k: v.cuda() for k, v in args.items()}
    call_step(backend.fade_step_, on_cpu, 0.6, 5, "l1mean", True)
    call_step(backend.fade_step_, on_gpu, 0.6, 5, "l1mean", True)
    assert_close_report(on_gpu["xp"].cpu(), on_cpu["xp"], TOLERANCE[torch.float32]["xp"], "xp CUDA vs CPU")
    assert_close_report(on_gpu["mom"].cpu(), on_cpu["mom"], TOLERANCE[torch.float32]["mom"], "mom CUDA vs CPU")
    keys = args["keys"]
    assert torch.equal(backend.fade_mask_ids(keys.cuda(), (3, 40, 20), 5, True).cpu(),
                       backend.fade_mask_ids(keys, (3, 40, 20), 5, True))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", [c for c in backend_cases(names=("cpp",), devices=("cuda",), variants=True)
                                     if c.values[0].variant == "cluster"], indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_cpp_cuda_cluster_step_on_several_waves_with_a_zero_gradient(backend, dtype, norm, pixel_masks, generator):
    """The grad-in-shared-memory variant on a batch of several waves and a zero-gradient image, and the same
    bits on a rerun (test_fade_step_matches_reference covers its other shapes)."""
    for shape in SHAPES[("cpp", "cuda")] + [(300, 3, 64, 32)]:
        args = step_inputs(shape, dtype, "cuda", generator)
        args["grad"][0].zero_()
        ours, ref = run_both(backend, args, 0.6, 5, norm, pixel_masks)
        name = f"cluster {shape} {dtype} {norm} pixel_masks={pixel_masks}"
        assert torch.isfinite(ours["mom"]).all(), f"{name}: non-finite mom"
        assert_step_matches(ours, ref, args, 5, pixel_masks, name)
        again = {k: v.clone() for k, v in args.items()}
        call_step(backend.fade_step_, again, 0.6, 5, norm, pixel_masks)
        assert torch.equal(again["xp"], ours["xp"]) and torch.equal(again["mom"], ours["mom"]), f"{name}: rerun"


@pytest.mark.gpu
@pytest.mark.parametrize("backend", backend_cases(names=("cpp",), devices=("cuda",)), indirect=True)
def test_cpp_cuda_step_variant_errors_say_what_to_do(backend, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    monkeypatch.setenv("PIXELFADE_CUDA_STEP", "fastest")
    args = step_inputs((2, 3, 8, 8), torch.float32, "cuda", generator)
    with pytest.raises(ValueError, match="PIXELFADE_CUDA_STEP must be 'two_pass' or 'cluster', got 'fastest'"):
        call_step(backend.fade_step_, args)
    Backend("cpp", "cuda", variant="cluster").activate(monkeypatch)
    huge = step_inputs((1, 3, 1024, 1024), torch.float32, "cuda", generator)  # 1/8 of grad: 1.5 MB per block
    with pytest.raises(ValueError, match="use PIXELFADE_CUDA_STEP=two_pass"):
        call_step(backend.fade_step_, huge)
