"""The Triton kernels (torch.ops.pixelfade_triton.*) against the pure-PyTorch reference.

On a machine without CUDA they run under Triton's CPU interpreter on tiny images; that mode is fixed when
the kernels are defined, so TRITON_INTERPRET=1 is set here before anything imports triton (tests/conftest.py
does the same for the whole session). With CUDA the same comparisons run compiled on realistic shapes,
plus CUDA-graph capture, torch.compile and the full torch.library.opcheck (tests marked ``gpu``).
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import importlib  # noqa: E402
import inspect  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

from helpers import assert_close_report, load_rng_vectors  # noqa: E402
from op_inputs import INDEX_EDGES, UINT64_EDGES, as_int64, random_keys, step_inputs  # noqa: E402
from pixelfade_fast import kernels as K  # noqa: E402
from pixelfade_fast import reference as R  # noqa: E402

step_module = importlib.import_module("pixelfade_fast.kernels.fade_step")
noise_module = importlib.import_module("pixelfade_fast.kernels.fade_noise")
mask_module = importlib.import_module("pixelfade_fast.kernels.fade_mask_ids")
launch_module = importlib.import_module("pixelfade_fast.kernels.launch")

STEP_TOL = {torch.float32: 1e-5, torch.float64: 1e-7}  # fp64: η itself is float32 on every backend
MOM_TOL = {torch.float32: 1e-5, torch.float64: 1e-12}
NOISE_ATOL = 1e-6

CPU_OK = K.available("cpu")
CUDA_OK = K.available("cuda")
DEVICES = [
    pytest.param("cpu", marks=pytest.mark.skipif(not CPU_OK, reason=K.unavailable_reason("cpu") or "available")),
    pytest.param("cuda", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not CUDA_OK, reason=K.unavailable_reason("cuda") or "available")]),
]
# Tiny odd images under the interpreter; on CUDA the gallery's realistic batch plus odd and degenerate shapes.
SHAPES = {"cpu": [(4, 3, 7, 5), (3, 3, 16, 8), (1, 3, 7, 5), (2, 1, 1, 1)],
          "cuda": [(64, 3, 256, 128), (5, 3, 37, 19), (1, 1, 1, 1), (2, 3, 5, 3)]}


@pytest.fixture(params=["default_tiles", "small_tiles"])
def tiles(request, monkeypatch):
    """Default launch shapes, or tiny ones so that small images span many programs, partials and tails."""
    if request.param == "small_tiles":
        monkeypatch.setattr(step_module, "TILES", step_module.StepTiles(block=16, num_warps=1, norm_block=8,
                                                                        norm_warps=1, max_partials=4))
        monkeypatch.setattr(noise_module, "TILES", launch_module.Tiles(block=32, num_warps=1))
        monkeypatch.setattr(mask_module, "TILES", launch_module.Tiles(block=16, num_warps=1))
    return request.param


# --------------------------------------------------------------------------------------------- Philox words

@triton.jit
def randint4x_kernel(key_ptr, index_ptr, out_ptr, count, BLOCK: tl.constexpr):
    """Triton's own tl.randint4x(key, index): the other side of the bit-exact comparison."""
    row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = row < count
    key = tl.load(key_ptr + row, mask=inside, other=0)
    index = tl.load(index_ptr + row, mask=inside, other=0)
    r0, r1, r2, r3 = tl.randint4x(key, index)
    tl.store(out_ptr + row * 4, r0.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
    tl.store(out_ptr + row * 4 + 1, r1.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
    tl.store(out_ptr + row * 4 + 2, r2.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)
    tl.store(out_ptr + row * 4 + 3, r3.to(tl.uint32, bitcast=True).to(tl.int64), mask=inside)


def key_index_pairs(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every edge key with every edge index, plus random keys over the whole 64-bit range and big indices."""
    generator = torch.Generator().manual_seed(11)
    edge_keys = torch.tensor([as_int64(k) for k in UINT64_EDGES], dtype=torch.int64)
    edge_index = torch.tensor(INDEX_EDGES, dtype=torch.int64)
    keys = torch.cat([edge_keys.repeat_interleave(len(INDEX_EDGES)),
                      torch.randint(-(2**63), 2**63 - 1, (300,), generator=generator)])
    index = torch.cat([edge_index.repeat(len(UINT64_EDGES)),
                       torch.randint(0, 2**62, (300,), generator=generator)])
    return keys.to(device), index.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_philox_words_bit_exact_vs_reference_and_triton_randint4x(device):
    keys, index = key_index_pairs(device)
    words = K.philox_words(keys, index)
    assert words.dtype == torch.int64 and words.shape == (keys.numel(), 4)
    expected = torch.stack(R.philox4x32(keys, index), dim=1)
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ from the reference"

    triton_words = torch.empty_like(words)
    randint4x_kernel[(triton.cdiv(keys.numel(), 128),)](keys, index, triton_words, keys.numel(), BLOCK=128)
    assert torch.equal(words, triton_words), \
        f"{int((words != triton_words).any(1).sum())} rows differ from tl.randint4x"
    high = keys.roll(7)  # the counter's upper words (contract v2), every uint64 edge among them
    words = K.philox_words(keys, index, high)
    expected = torch.stack(R.philox4x32(keys, index, high), dim=1)
    assert torch.equal(words, expected), f"{int((words != expected).any(1).sum())} rows differ (upper words set)"


@pytest.mark.parametrize("device", DEVICES)
def test_philox_words_known_answer_vectors(device):
    rows = load_rng_vectors()["philox"]
    keys = torch.tensor([as_int64(int(r["key"])) for r in rows], device=device)
    index = torch.tensor([int(r["index"]) for r in rows], device=device)
    assert K.philox_words(keys, index).tolist() == [r["words"] for r in rows]


@pytest.mark.parametrize("device", DEVICES)
def test_noise_and_mask_ids_known_answer_vectors(device):
    """η and mask ids (I = 5) of the vectors whose index falls inside a 1x64x64 image."""
    rows = [r for r in load_rng_vectors()["philox"] if int(r["index"]) < 4096]
    keys = torch.tensor([[as_int64(int(r["key"])), 0] * 2 for r in rows], device=device)  # v1 rows (K, 0, M, 0)
    noise = K.fade_noise(keys, (1, 64, 64)).flatten(1).cpu()
    ids = K.fade_mask_ids(keys, (1, 64, 64), 5, False).flatten(1).cpu()
    for row, r in enumerate(rows):
        assert abs(noise[row, int(r["index"])].item() - r["normal"]) <= NOISE_ATOL, r
        assert ids[row, int(r["index"])].item() == r["mask_id_5"], r


# ------------------------------------------------------------------------------------ fade_noise / mask ids

@pytest.mark.parametrize("device", DEVICES)
def test_fade_noise_matches_reference(device, tiles):
    generator = torch.Generator().manual_seed(3)
    for batch, channels, height, width in SHAPES[device]:
        keys = random_keys(batch, generator).to(device)
        keys[0] = torch.tensor([as_int64(2**64 - 1), as_int64(2**64 - 1), 0, 0])
        noise = K.fade_noise(keys, (channels, height, width))
        expected = R.fade_noise(keys, (channels, height, width))
        assert noise.dtype == torch.float32 and noise.shape == expected.shape
        assert torch.isfinite(noise).all()
        error = (noise - expected).abs().max().item()
        assert error <= NOISE_ATOL, f"max |η - reference| = {error:.3g} for shape {(batch, channels, height, width)}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_mask_ids_match_reference_exactly(device, pixel_masks, tiles):
    generator = torch.Generator().manual_seed(4)
    for (batch, channels, height, width), num_masks in zip(SHAPES[device], (5, 255, 2, 1)):
        keys = random_keys(batch, generator).to(device)
        ids = K.fade_mask_ids(keys, (channels, height, width), num_masks, pixel_masks)
        expected = R.fade_mask_ids(keys, (channels, height, width), num_masks, pixel_masks)
        assert ids.dtype == torch.uint8
        assert torch.equal(ids, expected), f"{int((ids != expected).sum())} ids differ (I={num_masks})"
        assert int(ids.max()) < num_masks
        if pixel_masks:
            assert torch.equal(ids, ids[:, :1].expand_as(ids)), "pixel masks must share one id across channels"


# --------------------------------------------------------------------------------------------------- fade_step_

def run_both(args, alpha, num_masks, norm, pixel_masks, step=K.fade_step_):
    """(xp, mom) after ``step`` and after the reference, each from its own copy of the inputs."""
    ours = {k: v.clone() for k, v in args.items()}
    ref = {k: v.clone() for k, v in args.items()}
    step(ours["xp"], ours["mom"], ours["grad"], ours["do_co"], ours["do_pro"], ours["beta"], ours["mask_idx"],
         ours["keys"], ours["lo"], ours["hi"], alpha, num_masks, norm, pixel_masks)
    R.fade_step_(ref["xp"], ref["mom"], ref["grad"], ref["do_co"], ref["do_pro"], ref["beta"], ref["mask_idx"],
                 ref["keys"], ref["lo"], ref["hi"], alpha, num_masks, norm, pixel_masks)
    return (ours["xp"], ours["mom"]), (ref["xp"], ref["mom"])


def check_step(args, result, expected, dtype, label):
    (xp, mom), (xp_ref, mom_ref) = result, expected
    assert_close_report(xp, xp_ref, STEP_TOL[dtype], f"xp {label}")
    assert_close_report(mom, mom_ref, MOM_TOL[dtype], f"mom {label}")
    untouched = ~args["do_co"]
    assert torch.equal(mom[untouched], args["mom"][untouched]), f"mom changed for images without CO ({label})"
    lo = args["lo"].to(dtype).view(1, -1, 1, 1)
    hi = args["hi"].to(dtype).view(1, -1, 1, 1)
    assert bool(((xp >= lo) & (xp <= hi)).all()), f"xp outside [lo, hi] ({label})"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("norm", ["l1mean", "l2sq"])
@pytest.mark.parametrize("pixel_masks", [False, True])
def test_fade_step_matches_reference(device, norm, pixel_masks, tiles):
    generator = torch.Generator().manual_seed(5 + 2 * pixel_masks + (norm == "l2sq"))
    for shape in SHAPES[device]:
        args = step_inputs(shape, torch.float32, device, generator)
        result, expected = run_both(args, 0.6, 5, norm, pixel_masks)
        check_step(args, result, expected, torch.float32, f"{shape} {norm} pixel_masks={pixel_masks}")


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_float64(device):
    generator = torch.Generator().manual_seed(6)
    for shape in SHAPES[device][:2]:
        args = step_inputs(shape, torch.float64, device, generator)
        for norm, pixel_masks in (("l1mean", False), ("l2sq", True)):
            result, expected = run_both(args, 0.6, 5, norm, pixel_masks)
            check_step(args, result, expected, torch.float64, f"float64 {shape} {norm}")


def test_alpha_is_passed_to_the_kernel_as_float64():
    """Triton types a float argument fp32 unless it is annotated; a stringified annotation (from
    ``from __future__ import annotations``) silently loses that, rounding alpha for float64 images."""
    annotation = inspect.signature(step_module.fade_step_kernel.fn).parameters["alpha"].annotation
    assert annotation == "fp64", f"alpha is annotated {annotation!r}"


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_is_bit_identical_across_runs(device, tiles):
    args = step_inputs(SHAPES[device][0], torch.float32, device, torch.Generator().manual_seed(7))
    args["do_co"][:] = True  # every image reduces its gradient
    first, _ = run_both(args, 0.6, 5, "l1mean", False)
    second, _ = run_both(args, 0.6, 5, "l1mean", False)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_zero_gradient_and_nan_handling(device):
    """Zero gradients give no NaN (n is floored at 1e-12); a NaN in xp stays NaN exactly where the reference keeps it."""
    shape = SHAPES[device][0]
    args = step_inputs(shape, torch.float32, device, torch.Generator().manual_seed(8))
    args["grad"][0] = 0.0
    args["do_co"][0] = True
    args["xp"][1, 0, 0, 0] = float("nan")
    args["grad"][~args["do_co"]] = float("nan")  # images without CO must not let their gradient through
    (xp, mom), (xp_ref, mom_ref) = run_both(args, 0.6, 5, "l1mean", False)
    assert torch.isfinite(mom[0]).all() and torch.isfinite(xp[0]).all()
    assert_close_report(xp, xp_ref, STEP_TOL[torch.float32], "xp with zero grad / NaN")
    assert_close_report(mom, mom_ref, MOM_TOL[torch.float32], "mom with zero grad / NaN")


@pytest.mark.parametrize("device", DEVICES)
def test_fade_step_non_contiguous_inputs_update_in_place(device):
    batch, channels, height, width = SHAPES[device][1]
    args = step_inputs((batch, channels, height, width), torch.float32, device, torch.Generator().manual_seed(9))
    expected_args = {k: v.clone() for k, v in args.items()}
    xp = args["xp"].to(memory_format=torch.channels_last)
    mom = args["mom"].transpose(2, 3).contiguous().transpose(2, 3)  # same values, strides of a transpose
    grad = torch.cat([args["grad"], args["grad"]], dim=3)[..., ::2]  # strided view
    grad.copy_(args["grad"])
    keys = args["keys"].t().contiguous().t()  # [B, 4] with strides (1, B)
    assert not (xp.is_contiguous() or mom.is_contiguous() or grad.is_contiguous() or keys.is_contiguous())
    xp_ptr, mom_ptr = xp.data_ptr(), mom.data_ptr()
    K.fade_step_(xp, mom, grad, args["do_co"], args["do_pro"], args["beta"], args["mask_idx"], keys,
                 args["lo"], args["hi"], 0.6, 5, "l2sq", True)
    assert xp.data_ptr() == xp_ptr and mom.data_ptr() == mom_ptr
    e = expected_args
    R.fade_step_(e["xp"], e["mom"], e["grad"], e["do_co"], e["do_pro"], e["beta"], e["mask_idx"], e["keys"],
                 e["lo"], e["hi"], 0.6, 5, "l2sq", True)
    assert_close_report(xp, e["xp"], STEP_TOL[torch.float32], "xp (channels_last)")
    assert_close_report(mom, e["mom"], MOM_TOL[torch.float32], "mom (transposed strides)")


@pytest.mark.parametrize("device", DEVICES)
def test_batches_beyond_one_launch_are_split(device, monkeypatch):
    """Batches larger than one launch's grid rows run in slices (forced here with 2 images per launch)."""
    monkeypatch.setattr(launch_module, "MAX_IMAGES_PER_LAUNCH", 2)
    shape = SHAPES["cpu"][0]
    args = step_inputs(shape, torch.float32, device, torch.Generator().manual_seed(10))
    result, expected = run_both(args, 0.6, 5, "l1mean", True)
    check_step(args, result, expected, torch.float32, "sliced launches")
    assert torch.equal(K.fade_mask_ids(args["keys"], shape[1:], 5, False), R.fade_mask_ids(args["keys"], shape[1:], 5, False))
    noise_error = (K.fade_noise(args["keys"], shape[1:]) - R.fade_noise(args["keys"], shape[1:])).abs().max().item()
    assert noise_error <= NOISE_ATOL


# ----------------------------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("device", DEVICES)
def test_bad_arguments_raise_clear_errors(device):
    args = step_inputs(SHAPES["cpu"][0], torch.float32, device, torch.Generator().manual_seed(12))
    order = ["xp", "mom", "grad", "do_co", "do_pro", "beta", "mask_idx", "keys", "lo", "hi"]

    def call(**changes):
        values = {**args, **changes}
        K.fade_step_(*[values[name] for name in order], 0.6, 5, "l1mean", False)

    with pytest.raises(TypeError, match="mom must have dtype"):
        call(mom=args["mom"].double())
    with pytest.raises(ValueError, match="grad must have shape"):
        call(grad=args["grad"][:, :2])
    with pytest.raises(TypeError, match="do_co must have dtype torch.bool"):
        call(do_co=args["do_co"].int())
    with pytest.raises(ValueError, match="keys must have shape"):
        call(keys=args["keys"][:, :1])
    with pytest.raises(ValueError, match="norm must be one of"):
        K.fade_step_(*[args[name] for name in order], 0.6, 5, "l3", False)
    with pytest.raises(ValueError, match=r"num_masks must be in \[1, 255\]"):
        K.fade_mask_ids(args["keys"], (3, 4, 4), 0)
    with pytest.raises(ValueError, match="shape must be"):
        K.fade_noise(args["keys"], (3, 4))
    with pytest.raises(ValueError, match="at most 1073741824 elements per image"):
        K.fade_noise(args["keys"], (1, 2**15, 2**15 + 1))
    with pytest.raises(ValueError, match="1-D int64"):
        K.philox_words(args["keys"], args["keys"][:, 0])
    with pytest.raises(ValueError, match="one shape and device"):
        K.philox_words(args["keys"][:, 0], args["keys"][:3, 1])
    with pytest.raises(ValueError, match="one shape and device"):
        K.philox_words(args["keys"][:, 0], args["keys"][:, 1], args["keys"][:3, 2])
    with pytest.raises(ValueError, match=r"shape \[B, 4\]"):
        K.fade_noise(args["keys"][:, :2], (3, 4, 4))


def test_availability_is_reported_per_device():
    assert K.available("cpu") == (K.unavailable_reason("cpu") == "")
    assert K.available("cuda") == (torch.cuda.is_available() and K.unavailable_reason("cuda") == "")
    assert not K.available("meta") and "CUDA" in K.unavailable_reason("meta")


def test_package_imports_without_triton():
    """Without triton the package still imports, reports why it is unavailable, and its ops say so."""
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


# ------------------------------------------------------------------------------------ torch.library behaviour

def opcheck_cases(device):
    args = step_inputs(SHAPES["cpu"][1], torch.float32, device, torch.Generator().manual_seed(13))
    step_args = tuple(args[name] for name in ["xp", "mom", "grad", "do_co", "do_pro", "beta", "mask_idx", "keys",
                                              "lo", "hi"]) + (0.6, 5, "l1mean", True)
    keys, index = key_index_pairs(device)
    ops = torch.ops.pixelfade_triton
    mask_ids = R.fade_mask_ids(args["keys"], (3, 16, 8), 5, True)
    return [(ops.fade_step_.default, step_args), (ops.fade_step_.default, step_args + (mask_ids,)),
            (ops.fade_noise.default, (args["keys"], [3, 16, 8])),
            (ops.fade_mask_ids.default, (args["keys"], [3, 16, 8], 5, False)),
            (ops.philox_words.default, (keys[:40], index[:40]))]


@pytest.mark.skipif(not CPU_OK, reason=K.unavailable_reason("cpu") or "available")
def test_opcheck_schema_under_the_interpreter():
    """Schema and autograd registration checks. The fake-tensor and AOT-dispatch checks cannot run here:
    torch.library.wrap_triton hands an interpreted kernel back unwrapped, so under FakeTensorMode it would
    be launched on fake tensors; they run on CUDA in test_opcheck_full."""
    for op, args in opcheck_cases("cpu"):
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration"))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=K.unavailable_reason("cuda") or "available")
def test_opcheck_full():
    for op, args in opcheck_cases("cuda"):
        torch.library.opcheck(op, args)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=K.unavailable_reason("cuda") or "available")
def test_fade_step_under_torch_compile_fullgraph():
    args = step_inputs(SHAPES["cuda"][0], torch.float32, "cuda", torch.Generator().manual_seed(14))

    @torch.compile(fullgraph=True)
    def compiled_step(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm,
                      pixel_masks):
        torch.ops.pixelfade_triton.fade_step_(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha,
                                              num_masks, norm, pixel_masks)

    compiled, expected = run_both(args, 0.6, 5, "l1mean", True, step=compiled_step)
    check_step(args, compiled, expected, torch.float32, "torch.compile")
    eager, _ = run_both(args, 0.6, 5, "l1mean", True)
    assert torch.equal(compiled[0], eager[0]) and torch.equal(compiled[1], eager[1])

    noise = torch.compile(lambda keys: K.fade_noise(keys, (3, 256, 128)), fullgraph=True)(args["keys"])
    assert (noise - R.fade_noise(args["keys"], (3, 256, 128))).abs().max().item() <= NOISE_ATOL


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=K.unavailable_reason("cuda") or "available")
def test_fade_step_cuda_graph_capture_and_replay():
    generator = torch.Generator().manual_seed(15)
    shape = SHAPES["cuda"][0]
    static = step_inputs(shape, torch.float32, "cuda", generator)
    order = ["xp", "mom", "grad", "do_co", "do_pro", "beta", "mask_idx", "keys", "lo", "hi"]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up compiles the kernels outside the capture
        K.fade_step_(*[static[name] for name in order], 0.6, 5, "l2sq", False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        K.fade_step_(*[static[name] for name in order], 0.6, 5, "l2sq", False)
    for _ in range(2):  # new inputs copied into the captured tensors, then replayed
        fresh = step_inputs(shape, torch.float32, "cuda", generator)
        for name in order:
            static[name].copy_(fresh[name])
        graph.replay()
        torch.cuda.synchronize()
        expected = {k: v.clone() for k, v in fresh.items()}
        R.fade_step_(*[expected[name] for name in order], 0.6, 5, "l2sq", False)
        check_step(fresh, (static["xp"], static["mom"]), (expected["xp"], expected["mom"]), torch.float32,
                   "CUDA graph replay")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_OK, reason=K.unavailable_reason("cuda") or "available")
def test_fade_step_beyond_int32_offsets():
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
    K.fade_step_(xp, mom, grad, small["do_co"], small["do_pro"], small["beta"], small["mask_idx"], small["keys"],
                 small["lo"], small["hi"], 0.6, 5, "l1mean", True)
    ref = {**{k: v[picked] for k, v in small.items() if k not in ("lo", "hi")}, "lo": small["lo"],
           "hi": small["hi"], **before}  # images are independent: the reference runs on the picked ones alone
    R.fade_step_(ref["xp"], ref["mom"], ref["grad"], ref["do_co"], ref["do_pro"], ref["beta"], ref["mask_idx"],
                 ref["keys"], ref["lo"], ref["hi"], 0.6, 5, "l1mean", True)
    assert_close_report(xp[picked], ref["xp"], STEP_TOL[torch.float32], "xp past int32 offsets")
    assert_close_report(mom[picked], ref["mom"], MOM_TOL[torch.float32], "mom past int32 offsets")
