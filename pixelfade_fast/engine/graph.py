"""CUDA-graph capture of one whole PixelFade step (forward, backward, schedule, fused step), replayed for every
step: the step counter and every buffer live on the device, so the same graph serves step 0 and step T-1.

Capture follows PyTorch's whole-network recipe: warm-up steps on a side stream (so that lazy initialisation,
cuDNN autotuning and the autograd engine's allocations happen outside the capture), then capture. The warm-up
moves the loop's state, so the caller loads its batch again before replaying.
"""
from __future__ import annotations

import torch

from ..step_args import StepFlags
from .loop import FadeLoop

WARMUP_STEPS = 3


class CapturedStep:
    """One captured step of ``loop`` (already loaded with a batch). ``replay()`` runs it again on the buffers."""

    def __init__(self, loop: FadeLoop) -> None:
        if loop.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        side = torch.cuda.Stream(device=loop.device)
        side.wait_stream(torch.cuda.current_stream(loop.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                loop.step()
        torch.cuda.current_stream(loop.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss, self.flags = loop.step()

    def replay(self) -> tuple[torch.Tensor, StepFlags]:
        self.graph.replay()
        return self.loss, self.flags
