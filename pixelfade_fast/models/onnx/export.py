"""export_onnx: write a zoo model (or any feature extractor) to ONNX, with PixelFade's metadata keys."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .info import write_metadata
from .proto import import_onnx

INPUT_NAME = "images"
OUTPUT_NAME = "features"


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = 17,
                input_size: tuple[int, int] | None = None, fold_batchnorm: bool = True, dynamic_batch: bool = True,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
    """Export ``model`` (a ReIDModel, or any module mapping [B, 3, H, W] to [B, D]) to an ONNX file.

    Uses torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), which covers opsets
    7 to 20 without extra packages. ``input_size`` (H, W) defaults to the model's ``input_size``; ``mean`` /
    ``std`` default to the model's. They are written as the ``input_size`` / ``mean`` / ``std`` metadata keys
    (see pixelfade_fast.models.onnx.info). ``fold_batchnorm`` folds each BatchNorm that follows a convolution
    into its weights (the exporter's eval-mode peephole; BatchNorm after other ops stays); False keeps every
    BatchNormalization node. ``dynamic_batch`` marks the batch axis of input and output as dynamic; without
    it the graph is fixed to the batch of 2 it is traced with.
    """
    onnx = import_onnx()
    size = tuple(input_size or getattr(model, "input_size", ()) or ())
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"input_size must be (height, width) positive ints (the model has none), got {size!r}")
    mean = mean if mean is not None else getattr(model, "mean", None)
    std = std if std is not None else getattr(model, "std", None)
    if mean is None or std is None:
        raise ValueError("mean and std are needed for the metadata: pass them, or export a ReIDModel")
    mean = [float(v) for v in torch.as_tensor(mean).reshape(-1)]
    std = [float(v) for v in torch.as_tensor(std).reshape(-1)]

    parameter = next(iter(model.parameters()), None)
    example = torch.zeros(2, 3, *size, device=parameter.device if parameter is not None else "cpu")
    mode = torch.onnx.TrainingMode.EVAL if fold_batchnorm else torch.onnx.TrainingMode.PRESERVE
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning, torch.jit.TracerWarning))
            torch.onnx.export(
                model, (example,), os.fspath(path), dynamo=False, opset_version=int(opset), training=mode,
                do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None)
    finally:
        model.train(was_training)
    proto = onnx.load(os.fspath(path))
    write_metadata(proto, size, mean, std)
    onnx.save(proto, os.fspath(path))
