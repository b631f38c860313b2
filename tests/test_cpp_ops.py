"""The C++/CUDA ops of pixelfade_fast._C (torch.ops.pixelfade.*) against the pure-PyTorch reference.

CPU kernels run everywhere the extension is built; the same comparisons run on the CUDA kernels (tests marked
``gpu``), plus CUDA-graph capture and the vectorised/scalar paths. Inputs are fresh random tensors each time.
"""

import pytest
import torch

from helpers import assert_close_report, load_rng_vectors
from op_inputs import INDEX_EDGES, UINT64_EDGES, as_int64, random_keys, step_inputs
from pixelfade_fast import _cpp
from pixelfade_fast import reference as R

pytestmark = pytest.mark.skipif(not _cpp.available(), reason=_cpp.unavailable_reason() or "available")

STEP_RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}
NOISE_ATOL = 1e-6  # η may differ from the reference in the last ulp of logf/cosf

CUDA_OK = _cpp.has_cuda_kernels() and torch.cuda.is_available()
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")]),
]
# CPU: B = 1, odd sizes, several 4096-element chunks with a tail and a channel boundary inside a chunk, HW = 1.
# CUDA: the gallery's batch (vector path), odd N (scalar path), 16-byte packs that straddle channels (HW = 3).
SHAPES = {"cpu": [(4, 3, 7, 5), (1, 3, 7, 5), (3, 2, 64, 65), (2, 5, 1, 1)],
          "cuda": [(64, 3, 256, 128), (1, 3, 256, 128), (5, 3, 37, 19), (2, 4, 1, 3), (1, 1, 1, 1)]}


def ops():
    return torch.ops.pixelfade


# --------------------------------------------------------------------------------------------- build and RNG

def test_build_info_describes_the_loaded_extension():
    info = _cpp.build_info()
    assert set(info) == {"cuda", "cuda_archs", "cuda_version", "openmp", "torch_version"}
    assert info["cuda"] == _cpp.has_cuda_kernels()
    assert (info["cuda_version"] is None) == (not info["cuda"])
    assert all(arch.startswith("sm_") for arch in info["cuda_archs"]) and bool(info["cuda_archs"]) == info["cuda"]
    assert torch.__version__.startswith(info["torch_version"]), "extension built against another torch"
    assert _cpp.unavailable_reason() == ""


@pytest.mark.parametrize("device", DEVICES)
def test_philox_words_bit_exact_vs_reference(device):
    """Every edge key with every edge index, plus random keys over the whole 64-bit range and indices past 2**32,
    without and with the counter's upper words (contract v2 fills them)."""
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    edge_keys = torch.tensor([as_int64(k) for k in UINT64_EDGES])
    edge_index = torch.tensor(INDEX_EDGES)
    keys = torch.cat([edge_keys.repeat_interleave(len(INDEX_EDGES)),
                      torch.randint(-(2**63), 2**63 - 1, (500,), generator=generator)]).to(device)
    index = torch.cat([edge_index.repeat(len(UINT64_EDGES)),
                       torch.randint(0, 2**62, (500,), generator=generator)]).to(device)
    words = ops().philox_words(keys, index)
    expected = torch.stack(R.philox4x32(keys, index), dim=1)
    assert words.dtype == torch.int64 and words.shape == (keys.numel(), 4) and words.device == keys.device
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ from the reference"
    high = keys.roll(7)  # every uint64 edge as an upper counter word too
    words = ops().philox_words(keys, index, high)
    expected = torch.stack(R.philox4x32(keys, index, high), dim=1)
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ (upper words set)"


@pytest.mark.parametrize("device", DEVICES)
def test_philox_words_known_answer_vectors(device):
    rows = load_rng_vectors()["philox"]
    keys = torch.tensor([as_int64(int(r["key"])) for r in rows], device=device)
    index = torch.tensor([int(r["index"]) for r in rows], device=device)
    assert ops().philox_words(keys, index).tolist() == [r["words"] for r in rows]


@pytest.mark.parametrize("device", DEVICES)
def test_noise_and_mask_ids_known_answer_vectors(device):
    """η and mask ids (I = 5) of the vectors whose index falls inside a 1x64x64 image."""
    rows = [r for r in load_rng_vectors()["philox"] if int(r["index"]) < 4096]
    keys = torch.tensor([[as_int64(int(r["key"])), 0] * 2 for r in rows], device=device)  # v1 rows (K, 0, M, 0)
    noise = ops().fade_noise(keys, [1, 64, 64]).flatten(1).cpu()
    ids = ops().fade_mask_ids(keys, [1, 64, 64], 5, False).flatten(1).cpu()
    for row, r in enumerate(rows):
        assert abs(noise[row, int(r["index"])].item() - r["normal"]) <= NOISE_ATOL, r
        assert ids[row, int(r["index"])].item() == r["mask_id_5"], r


@pytest.mark.parametrize("device", DEVICES)
def test_fade_noise_matches_reference(device):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for batch, channels, height, width in SHAPES[device]:
        keys = random_keys(batch, generator).to(device)
        keys[0, :2] = as_int64(2**64 - 1)
        noise = ops().fade_noise(keys, [channels, height, width])
        expected = R.fade_noise(keys, (channels, height, width))
        assert noise.dtype == torch.float32 and noise.shape == expected.shape and torch.isfinite(noise).all()
        error = (noise - expected).abs().max().item()
        assert error <= NOISE_ATOL, f"max |η - reference| = {error:.3g} for shape {(batch, channels, height, width)}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_mask_ids_match_reference_exactly(device, pixel_masks):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for (batch, channels, height, width), num_masks in zip(SHAPES[device], (5, 255, 1, 7, 2)):
        keys = random_keys(batch, generator).to(device)
        ids = ops().fade_mask_ids(keys, [channels, height, width], num_masks, pixel_masks)
        expected = R.fade_mask_ids(keys, (channels, height, width), num_masks, pixel_masks)
        assert ids.dtype == torch.uint8
        assert torch.equal(ids, expected), f"{int((ids != expected).sum())} ids differ (I={num_masks})"


# --------------------------------------------------------------------------------------------------- fade_step_

def call_step(step, a, alpha, num_masks, norm, pixel_masks):
    step(a["xp"], a["mom"], a["grad"], a["do_co"], a["do_pro"], a["beta"], a["mask_idx"], a["keys"], a["lo"],
         a["hi"], alpha, num_masks, norm, pixel_masks)


def run_both(args, alpha=0.6, num_masks=5, norm="l1mean", pixel_masks=False):
    """(ours, reference): each a dict of the arguments after the step, run on its own copy."""
    ours = {k: v.clone() for k, v in args.items()}
    ref = {k: v.clone() for k, v in args.items()}
    call_step(ops().fade_step_, ours, alpha, num_masks, norm, pixel_masks)
    call_step(R.fade_step_, ref, alpha, num_masks, norm, pixel_masks)
    return ours, ref


def assert_step_matches(ours, ref, args, num_masks, pixel_masks, name):
    """xp and mom within the dtype's tolerance. η is float32 on every backend, so in float64 the replaced
    elements are held to η's tolerance and everything else to 1e-10."""
    dtype = args["xp"].dtype
    assert_close_report(ours["mom"], ref["mom"], STEP_RTOL[dtype], f"{name}: mom")
    if dtype == torch.float32:
        assert_close_report(ours["xp"], ref["xp"], STEP_RTOL[dtype], f"{name}: xp")
    else:
        ids = R.fade_mask_ids(args["keys"], tuple(args["xp"].shape[1:]), num_masks, pixel_masks)
        per_image = (-1, 1, 1, 1)
        replaced = args["do_pro"].reshape(per_image) & (ids.int() == args["mask_idx"].reshape(per_image))
        assert_close_report(ours["xp"][~replaced], ref["xp"][~replaced], STEP_RTOL[dtype], f"{name}: xp (kept)")
        if replaced.any():
            error = (ours["xp"][replaced] - ref["xp"][replaced]).abs().max().item()
            assert error <= NOISE_ATOL, f"{name}: replaced elements differ from the reference by {error:.3g}"
    # Images without CO keep mom bit for bit; images with neither flag are only clamped.
    keep = ~args["do_co"]
    assert torch.equal(ours["mom"][keep], args["mom"][keep]), f"{name}: mom changed without CO"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_step_matches_reference(device, dtype, norm, pixel_masks):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for shape in SHAPES[device]:
        args = step_inputs(shape, dtype, device, generator)
        ours, ref = run_both(args, 0.6, 5, norm, pixel_masks)
        assert_step_matches(ours, ref, args, 5, pixel_masks, f"{shape} {dtype} {norm} pixel_masks={pixel_masks}")


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_non_contiguous_inputs_update_in_place(device):
    """channels_last xp/mom, a sliced grad and strided flags: results land in the caller's tensors."""
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    args = step_inputs((4, 3, 9, 6), torch.float32, device, generator)
    wide_grad = torch.randn(4, 3, 9, 12, generator=generator).to(device)
    args["grad"] = wide_grad[..., ::2]
    args["do_co"] = torch.stack([args["do_co"], args["do_co"]], 1)[:, 0]
    ours = {k: v.clone() for k, v in args.items()}
    ours["xp"] = ours["xp"].to(memory_format=torch.channels_last)
    ours["mom"] = ours["mom"].to(memory_format=torch.channels_last)
    ours["grad"] = args["grad"]
    ours["do_co"] = args["do_co"]
    assert not ours["xp"].is_contiguous() and not ours["grad"].is_contiguous() and not ours["do_co"].is_contiguous()
    xp_storage, mom_storage = ours["xp"].data_ptr(), ours["mom"].data_ptr()
    call_step(ops().fade_step_, ours, 0.6, 5, "l2sq", True)
    ref = {k: v.clone() for k, v in args.items()}
    call_step(R.fade_step_, ref, 0.6, 5, "l2sq", True)
    assert ours["xp"].data_ptr() == xp_storage and ours["mom"].data_ptr() == mom_storage
    assert ours["xp"].is_contiguous(memory_format=torch.channels_last)
    assert_step_matches(ours, ref, args, 5, True, "non-contiguous")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
def test_fade_step_zero_gradient_gives_no_nan(device, norm):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    args = step_inputs((3, 3, 7, 5), torch.float32, device, generator)
    args["grad"].zero_()
    args["do_co"].fill_(True)
    ours, ref = run_both(args, norm=norm)
    assert torch.isfinite(ours["xp"]).all() and torch.isfinite(ours["mom"]).all()
    assert torch.equal(ours["mom"], 0.6 * args["mom"]), "a zero gradient must leave mom = alpha * mom exactly"
    assert_step_matches(ours, ref, args, 5, False, f"zero gradient {norm}")


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_propagates_nan_like_the_reference(device):
    """A NaN in xp stays NaN through the clamp; a NaN in G poisons that image's norm, as in the reference."""
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    args = step_inputs((4, 3, 7, 5), torch.float32, device, generator)
    args["do_co"] = torch.tensor([False, True, False, False], device=device)
    args["do_pro"].fill_(False)
    args["xp"][0, 1, 2, 3] = float("nan")
    args["grad"][1, 0, 0, 0] = float("nan")
    args["grad"][2, 0, 0, 0] = float("nan")  # no CO for image 2: its grad is never read
    ours, ref = run_both(args)
    assert torch.isnan(ours["xp"][0, 1, 2, 3]) and torch.isnan(ours["xp"][1]).all()
    assert torch.isfinite(ours["xp"][2]).all()
    assert_close_report(ours["xp"], ref["xp"], 1e-5, "xp with NaN")
    assert_close_report(ours["mom"], ref["mom"], 1e-5, "mom with NaN")


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_is_bit_identical_across_runs(device):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    shape = SHAPES[device][0] if device == "cuda" else (3, 2, 64, 65)
    args = step_inputs(shape, torch.float32, device, generator)
    args["do_co"].fill_(True)
    first = {k: v.clone() for k, v in args.items()}
    second = {k: v.clone() for k, v in args.items()}
    call_step(ops().fade_step_, first, 0.6, 5, "l1mean", False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the CPU chunk layout does not depend on the thread count
        call_step(ops().fade_step_, second, 0.6, 5, "l1mean", False)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first["xp"], second["xp"]) and torch.equal(first["mom"], second["mom"])


@pytest.mark.parametrize("device", DEVICES)
def test_bad_arguments_raise_errors_naming_the_argument(device):
    generator = torch.Generator().manual_seed(0)
    good = step_inputs((2, 3, 4, 4), torch.float32, device, generator)
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
    if device == "cuda":
        cases.append(("do_co", dict(do_co=good["do_co"].cpu()), ValueError))
    for name, change, error in cases:
        with pytest.raises(error, match=f": {name} must"):
            call_step(ops().fade_step_, {**good, **change}, 0.6, 5, "l1mean", False)
    with pytest.raises(ValueError, match=": norm must"):
        call_step(ops().fade_step_, good, 0.6, 5, "l3", False)
    with pytest.raises(ValueError, match=": num_masks must"):
        call_step(ops().fade_step_, good, 0.6, 0, "l1mean", False)
    keys = good["keys"]
    with pytest.raises(TypeError, match=": keys must"):
        ops().fade_noise(keys.float(), [3, 4, 4])
    with pytest.raises(ValueError, match=": shape must"):
        ops().fade_noise(keys, [4, 4])
    with pytest.raises(ValueError, match=": num_masks must"):
        ops().fade_mask_ids(keys, [3, 4, 4], 256, False)
    with pytest.raises(ValueError, match="key and index must have the same shape"):
        ops().philox_words(keys[:, 0], keys[:1, 0])
    with pytest.raises(TypeError, match=": index must"):
        ops().philox_words(keys[:, 0], keys[:, 0].int())
    with pytest.raises(ValueError, match="counter_high must have key's shape"):
        ops().philox_words(keys[:, 0], keys[:, 1], keys[:1, 1])
    with pytest.raises(ValueError, match=r"keys must have shape \[B, 4\]"):
        ops().fade_noise(keys[:, :2], [3, 4, 4])


# ------------------------------------------------------------------------------ torch.library and torch.compile

@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_every_op(device):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    a = step_inputs((3, 3, 5, 4), torch.float32, device, generator)
    keys = a["keys"]
    samples = [
        (ops().fade_step_.default, (a["xp"], a["mom"], a["grad"], a["do_co"], a["do_pro"], a["beta"], a["mask_idx"],
                                    keys, a["lo"], a["hi"], 0.6, 5, "l2sq", True)),
        (ops().fade_step_.default, (a["xp"], a["mom"], a["grad"], a["do_co"], a["do_pro"], a["beta"], a["mask_idx"],
                                    keys, a["lo"], a["hi"], 0.6, 5, "l1mean", False,
                                    ops().fade_mask_ids(keys, [3, 5, 4], 5, False))),
        (ops().fade_noise.default, (keys, [3, 5, 4])),
        (ops().fade_mask_ids.default, (keys, [3, 5, 4], 5, True)),
        (ops().philox_words.default, (keys[:, 0].contiguous(), keys[:, 1].abs())),
        (ops().philox_words.default, (keys[:, 0].contiguous(), keys[:, 1].abs(), keys[:, 3].contiguous())),
    ]
    for op, args in samples:
        torch.library.opcheck(op, args)


def test_fake_kernels_give_output_metadata_on_meta_tensors():
    keys = torch.empty(3, 4, dtype=torch.int64, device="meta")
    noise = ops().fade_noise(keys, [3, 8, 4])
    ids = ops().fade_mask_ids(keys, [3, 8, 4], 5, True)
    words = ops().philox_words(keys[:, 0], keys[:, 1])
    assert (noise.shape, noise.dtype, noise.device.type) == ((3, 3, 8, 4), torch.float32, "meta")
    assert (ids.shape, ids.dtype) == ((3, 3, 8, 4), torch.uint8)
    assert (words.shape, words.dtype) == ((3, 4), torch.int64)


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_runs_under_torch_compile_fullgraph(device):
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    args = step_inputs((4, 3, 7, 5), torch.float32, device, generator)

    def two_steps(a):
        """A step that draws the mask ids, then one that reads them materialised (as protect() does)."""
        ids = ops().fade_mask_ids(a["keys"], [3, 7, 5], 5, False)
        for mask_ids in (None, ids):
            ops().fade_step_(a["xp"], a["mom"], a["grad"], a["do_co"], a["do_pro"], a["beta"], a["mask_idx"],
                             a["keys"], a["lo"], a["hi"], 0.6, 5, "l1mean", False, mask_ids)
        return a["xp"] * 2

    torch._dynamo.reset()
    compiled_in = {k: v.clone() for k, v in args.items()}
    eager_in = {k: v.clone() for k, v in args.items()}
    doubled = torch.compile(two_steps, fullgraph=True)(compiled_in)
    expected = two_steps(eager_in)
    assert torch.equal(doubled, expected)
    assert torch.equal(compiled_in["xp"], eager_in["xp"]) and torch.equal(compiled_in["mom"], eager_in["mom"])


# ------------------------------------------------------------------------------------------------- CUDA only

def use_cuda_step(monkeypatch, variant):
    """Select the CUDA fade_step_ variant (PIXELFADE_CUDA_STEP) for this test; skip `cluster` before Hopper."""
    monkeypatch.setenv("PIXELFADE_CUDA_STEP", variant)
    if variant == "cluster" and torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("thread-block clusters need compute capability 9.0 or later")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")
@pytest.mark.parametrize("variant", ["two_pass", "cluster"])
def test_cuda_fade_step_graph_capture_and_replay(monkeypatch, variant):
    use_cuda_step(monkeypatch, variant)
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    static = step_inputs((8, 3, 64, 32), torch.float32, "cuda", generator)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the graph
        call_step(ops().fade_step_, {k: v.clone() for k, v in static.items()}, 0.6, 5, "l1mean", True)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call_step(ops().fade_step_, static, 0.6, 5, "l1mean", True)
    for _ in range(3):  # fresh inputs copied into the captured tensors, then replayed
        fresh = step_inputs((8, 3, 64, 32), torch.float32, "cuda", generator)
        for name, value in fresh.items():
            static[name].copy_(value)
        graph.replay()
        ref = {k: v.clone() for k, v in fresh.items()}
        call_step(R.fade_step_, ref, 0.6, 5, "l1mean", True)
        torch.cuda.synchronize()
        assert_step_matches(static, ref, fresh, 5, True, "CUDA graph replay")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_fade_step_misaligned_storage_takes_the_scalar_path(dtype):
    """Contiguous tensors whose data starts one element past a 16-byte boundary cannot use vector loads."""
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    shape = (4, 3, 32, 16)
    args = step_inputs(shape, dtype, "cuda", generator)
    numel = args["xp"].numel()
    ours = dict(args)
    for name in ("xp", "mom", "grad"):
        buffer = torch.empty(numel + 1, dtype=dtype, device="cuda")
        ours[name] = buffer[1:].view(shape)
        ours[name].copy_(args[name])
        assert ours[name].is_contiguous() and ours[name].data_ptr() % 16 != 0
    call_step(ops().fade_step_, ours, 0.6, 5, "l2sq", False)
    ref = {k: v.clone() for k, v in args.items()}
    call_step(R.fade_step_, ref, 0.6, 5, "l2sq", False)
    assert_step_matches(ours, ref, args, 5, False, f"misaligned {dtype}")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")
def test_cuda_and_cpu_kernels_agree():
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    args = step_inputs((6, 3, 40, 20), torch.float32, "cpu", generator)
    on_cpu = {k: v.clone() for k, v in args.items()}
    on_gpu = {k: v.cuda() for k, v in args.items()}
    call_step(ops().fade_step_, on_cpu, 0.6, 5, "l1mean", True)
    call_step(ops().fade_step_, on_gpu, 0.6, 5, "l1mean", True)
    assert_close_report(on_gpu["xp"].cpu(), on_cpu["xp"], 1e-5, "xp CUDA vs CPU")
    assert_close_report(on_gpu["mom"].cpu(), on_cpu["mom"], 1e-5, "mom CUDA vs CPU")
    keys = args["keys"]
    assert torch.equal(ops().fade_mask_ids(keys.cuda(), [3, 40, 20], 5, True).cpu(),
                       ops().fade_mask_ids(keys, [3, 40, 20], 5, True))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_cuda_cluster_step_matches_reference_and_is_deterministic(monkeypatch, dtype, norm, pixel_masks):
    """The grad-in-shared-memory variant: every shape of the two-pass tests plus a batch of several waves,
    a zero-gradient image, and the same bits on a rerun."""
    use_cuda_step(monkeypatch, "cluster")
    generator = torch.Generator().manual_seed(torch.seed() % 2**31)
    for shape in SHAPES["cuda"] + [(300, 3, 64, 32)]:
        args = step_inputs(shape, dtype, "cuda", generator)
        args["grad"][0].zero_()
        ours, ref = run_both(args, 0.6, 5, norm, pixel_masks)
        name = f"cluster {shape} {dtype} {norm} pixel_masks={pixel_masks}"
        assert torch.isfinite(ours["mom"]).all(), f"{name}: non-finite mom"
        assert_step_matches(ours, ref, args, 5, pixel_masks, name)
        again = {k: v.clone() for k, v in args.items()}
        call_step(ops().fade_step_, again, 0.6, 5, norm, pixel_masks)
        assert torch.equal(again["xp"], ours["xp"]) and torch.equal(again["mom"], ours["mom"]), f"{name}: rerun"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA device and an extension built with the CUDA kernels")
def test_cuda_step_variant_errors_say_what_to_do(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    monkeypatch.setenv("PIXELFADE_CUDA_STEP", "fastest")
    args = step_inputs((2, 3, 8, 8), torch.float32, "cuda", generator)
    with pytest.raises(ValueError, match="PIXELFADE_CUDA_STEP must be 'two_pass' or 'cluster', got 'fastest'"):
        call_step(ops().fade_step_, args, 0.6, 5, "l1mean", False)
    use_cuda_step(monkeypatch, "cluster")
    huge = step_inputs((1, 3, 1024, 1024), torch.float32, "cuda", generator)  # 1/8 of grad: 1.5 MB per block
    with pytest.raises(ValueError, match="use PIXELFADE_CUDA_STEP=two_pass"):
        call_step(ops().fade_step_, huge, 0.6, 5, "l1mean", False)
