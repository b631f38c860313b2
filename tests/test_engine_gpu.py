"""The engine on a GPU: one captured CUDA graph replays every step, equal to the eager loop; bf16 and compile."""
import pytest
import torch

import pixelfade_fast as pf
from engine_models import smooth_images
from pixelfade_fast.engine import Acceleration
from pixelfade_fast.models import build_model

pytestmark = pytest.mark.gpu
CONFIG = pf.FadeConfig(steps=12, init_steps=2, final_steps=2, finish_steps=4, quantize=True)
BACKENDS = [name for name, status in pf.backends().items() if status.cuda]


@pytest.fixture(scope="module")
def model():
    return build_model("osnet_x0_25", seed=0, input_size=(64, 32)).cuda()


@pytest.fixture(scope="module")
def images():
    return smooth_images(6, seed=1).cuda()


def _protect(model, images, backend, **options):
    return pf.protect(model, images, CONFIG, seed=4, backend=backend, batch_size=4, progress=False,
                      acceleration=Acceleration(**options))


@pytest.mark.parametrize("backend", BACKENDS)
def test_captured_graph_replays_the_eager_loop(model, images, backend):
    eager = _protect(model, images, backend, cuda_graph=False, channels_last=False)
    graphed = _protect(model, images, backend, cuda_graph=True, channels_last=False)
    notes = {k: v for k, v in graphed.timings.items() if k.startswith("cuda_graph")}
    assert notes and all(v == "captured" for v in notes.values()), notes  # a batch of 4 and the last one of 2
    # The same kernels replayed: at most rounding differences, which the per-image decisions may amplify locally.
    assert (graphed.images - eager.images).abs().mean() < 1 / 255
    torch.testing.assert_close(graphed.final_loss, eager.final_loss, rtol=0.2, atol=2e-3)
    again = _protect(model, images, backend, cuda_graph=True, channels_last=False)
    assert torch.equal(again.images, graphed.images)  # replays are reproducible


def test_bf16_and_channels_last_meet_the_constraint_checked_in_fp32(model, images):
    result = _protect(model, images, BACKENDS[0], amp=True, channels_last=True, cuda_graph=True)
    assert torch.isfinite(result.final_loss).all()
    assert result.timings["acceleration"]["amp"] and result.timings["acceleration"]["channels_last"]


def test_compiled_model_in_a_captured_graph(model, images):
    result = _protect(model, images[:4], BACKENDS[0], compile=True, cuda_graph=True)
    reference = _protect(model, images[:4], BACKENDS[0], compile=False, cuda_graph=True)
    assert (result.final_loss - reference.final_loss).abs().max() < 0.05
