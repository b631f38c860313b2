"""Test setup: Triton kernels run under the interpreter on CPU-only machines (must be set before triton loads)."""
import os
import tempfile

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Speed choices (engine/tuning.py) are cached in a temporary file, never in the user's cache: tests read nothing
# outside the repository.
os.environ["PIXELFADE_TUNING_CACHE"] = os.path.join(tempfile.mkdtemp(prefix="pixelfade-tuning-"), "tuning.json")

# The tests' tensors are small: one thread is faster than two, and it keeps OpenMP's spinning workers from
# stalling the suite when other processes share the cores.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small convolutions run faster on one thread than on two contended ones; restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_SYNTHPED_SIZE = (32, 16)


@pytest.fixture
def tiny_synthped(tmp_path):
    """A tiny SynthPed split (4 train, 4 test identities, two cameras) and tiny_cnn weights at its size, for
    end-to-end tests of the bench scripts: (root, weights, (H, W))."""
    from pixelfade_fast.data import generate_synthped
    from pixelfade_fast.models import build_model, save_safetensors
    root = tmp_path / "synthped"
    generate_synthped(root, num_ids_train=4, num_ids_test=4, images_per_id_per_cam=1, num_cams=2,
                      size=TINY_SYNTHPED_SIZE, seed=5)
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=0, input_size=TINY_SYNTHPED_SIZE), weights)
    return root, weights, TINY_SYNTHPED_SIZE


@pytest.fixture
def backend(request, monkeypatch):
    """The op backend of a test parametrised with ``indirect=True`` over tests/op_backends.backend_cases(),
    its CUDA step variant or Triton tiles selected for this test."""
    return request.param.activate(monkeypatch)
