"""BatchNorm folding: exact up to rounding on the zoo's models, refused where a fold would change the features."""
import copy

import pytest
import torch
from torch import nn

from helpers import assert_close_report
from pixelfade_fast.models import build_model
from pixelfade_fast.engine.fold_batchnorm import FoldError, fold_batchnorm

# (name, input size, BatchNorms expected to remain: the ones no conv/linear feeds directly)
ZOO = [("tiny_cnn", (64, 32), 0), ("osnet_x0_25", (64, 32), 0), ("agw_r50_nl", (64, 32), 1)]


def _randomise_statistics(model: nn.Module, size=(8, 8), seed: int = 0) -> None:
    """BatchNorms with non-trivial affine parameters and the running statistics of real activations (measured
    in training mode on random images), as after training."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for module in norms:
        module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
        module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
        module.momentum = None  # cumulative average over the calibration batches
        module.reset_running_stats()
    target = getattr(model, "backbone", model)
    target.train()
    with torch.no_grad():
        for _ in range(3):
            target(torch.randn(4, 3, *size, generator=generator))
    target.eval()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm((a - b).double()) / torch.linalg.vector_norm(b.double()))


@pytest.mark.parametrize("name, size, remaining", ZOO)
def test_folded_zoo_models_compute_the_same_features(name, size, remaining):
    model = build_model(name, seed=0, input_size=size)
    _randomise_statistics(model, size)
    probe = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    folded, report = fold_batchnorm(model, probe)
    norms_before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    norms_after = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert len(report.folded) == norms_before - remaining and norms_after == remaining
    assert report.relative_change < 1e-10  # exact in float64
    assert next(folded.parameters()).dtype == torch.float32
    # In float32 the folded model's features are as close to the float64 truth as the model's own are (a deep
    # random-weight net amplifies fp32 rounding, so both are compared with the truth, not with each other).
    fresh = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        truth = copy.deepcopy(model).double()(fresh.double())
        assert _relative(folded(fresh), truth) < 2 * _relative(model(fresh), truth) + 1e-6
    # In float64 the fold is exact, input gradients included. (Not compared in float32: max pooling routes the
    # gradient to the larger of two nearly equal values, so rounding alone may move it.)
    model64 = copy.deepcopy(model).double()
    folded64, _ = fold_batchnorm(model64, probe.double())
    assert next(folded64.parameters()).dtype == torch.float64
    outputs = []
    for net in (model64, folded64):
        x = fresh.double().requires_grad_(True)
        features = net(x)
        features.square().sum().backward()
        outputs.append((features.detach(), x.grad))
    assert_close_report(outputs[1][0], outputs[0][0], 1e-10, f"{name} folded features, float64")
    assert_close_report(outputs[1][1], outputs[0][1], 1e-9, f"{name} folded input gradient, float64")
    assert any(p.requires_grad for p in model.parameters())  # the original is untouched


class SharedConvOutput(nn.Module):
    """A conv whose output feeds a BatchNorm *and* a skip connection: folding would change the skip."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        y = self.conv(x)
        return self.head((self.bn(y) + y).mean(dim=(2, 3)))


def test_a_fold_that_changes_the_features_is_refused():
    model = SharedConvOutput().eval()
    _randomise_statistics(model)
    with pytest.raises(FoldError, match="changed the features"):
        fold_batchnorm(model, torch.randn(2, 3, 8, 8))


class CalledTwice(nn.Module):
    """One conv+BN pair applied to two inputs: still foldable only if each is called once, so it is left alone."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return (self.bn(self.conv(x)) + self.bn(self.conv(x.flip(-1)))).mean(dim=(2, 3))


def test_modules_called_twice_are_not_folded():
    model = CalledTwice().eval()
    _randomise_statistics(model)
    folded, report = fold_batchnorm(model, torch.randn(2, 3, 4, 4))
    assert report.folded == () and isinstance(folded.bn, nn.BatchNorm2d)
