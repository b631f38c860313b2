"""A digest of a model's weights: the identity the gallery's run record keeps, whatever file they came from."""
from __future__ import annotations

import hashlib

import torch
from torch import nn


def state_digest(model: nn.Module) -> str:
    """sha256 (first 16 hex digits) over every state-dict entry's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
