"""The modules load_onnx returns: the fx GraphModule of the graph, and a wrapper for fixed-batch graphs."""

from __future__ import annotations

import torch
from torch import fx, nn


class OnnxGraphModule(fx.GraphModule):
    """An imported ONNX graph: eval semantics only (BatchNorm uses its stored statistics, Dropout is gone),
    so ``train(True)`` raises like ReIDModel's."""

    def train(self, mode: bool = True) -> OnnxGraphModule:
        if mode:
            raise RuntimeError("a model imported from ONNX is an inference-mode feature extractor and cannot "
                               "be put in training mode")
        return super().train(False)


def check_input(x: torch.Tensor, size: tuple[int | None, int | None]) -> torch.Tensor:
    """The first node of every imported graph: a clear error for a batch the graph cannot take."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a normalised image batch [B, 3, H, W], got shape {tuple(x.shape)}")
    if any(want is not None and got != want for got, want in zip(x.shape[2:], size)):
        raise ValueError(f"this ONNX model takes images of size {size} (H, W), got {tuple(x.shape[2:])}")
    return x


def features_2d(y: torch.Tensor) -> torch.Tensor:
    """The graph output as [B, D]: [B, D, 1, 1]-style outputs are flattened."""
    return y.flatten(1) if y.dim() > 2 else y


class FixedBatch(nn.Module):
    """Runs a graph exported for a fixed batch size on any batch: in chunks of that size, the last chunk
    padded by repeating its last image (features are per image in eval mode; the extra rows are dropped)."""

    def __init__(self, graph_module: nn.Module, batch: int):
        super().__init__()
        self.graph_module = graph_module
        self.batch = int(batch)
        super().train(False)

    def train(self, mode: bool = True) -> FixedBatch:
        self.graph_module.train(mode)
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for first in range(0, x.shape[0], self.batch):
            chunk = x[first:first + self.batch]
            missing = self.batch - chunk.shape[0]
            if missing:
                chunk = torch.cat([chunk, chunk[-1:].expand(missing, *chunk.shape[1:])])
            outputs.append(self.graph_module(chunk)[: self.batch - missing])
        return torch.cat(outputs)
