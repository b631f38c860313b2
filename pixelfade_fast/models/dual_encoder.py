"""DualEncoder: an image branch and a text branch mapping into one embedding space (text-to-image Re-ID).

The image branch is a :class:`FeatureExtractor` (a zoo backbone's embedding, then a linear projection), so it
is an authorised model ``protect`` takes as it is. The file format is one .safetensors: the image branch under
"image.", the text branch under "text.", "logit_scale"; its metadata holds "dual_encoder" (JSON: the image
backbone, input size, mean / std, embedding and text-encoder sizes) and "vocabulary" (JSON list of words).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .extractor import FeatureExtractor
from .registry import build_model
from .text_encoder import TextEncoder, WordTokenizer
from .wrapper import IMAGENET_MEAN, IMAGENET_STD

FORMAT_KEY = "dual_encoder"


@dataclass(frozen=True)
class DualEncoderSpec:
    """Everything needed to rebuild a DualEncoder's modules (the weights aside)."""

    image_model: str = "osnet_x0_25"
    input_size: tuple[int, int] = (128, 64)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    embed_dim: int = 256
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_length: int = 48


class DualEncoder(nn.Module):
    """``image`` (normalised images -> [B, D]) and ``text`` (token ids -> [B, D]) with the tokenizer and a
    learnable logit scale (CLIP's inverse temperature, stored as its log)."""

    def __init__(self, spec: DualEncoderSpec, vocabulary: Sequence[str], seed: int | None = None):
        super().__init__()
        self.spec = spec
        self.tokenizer = WordTokenizer(vocabulary, spec.max_length)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            backbone = build_model(spec.image_model, input_size=tuple(spec.input_size)).backbone
            projection = nn.Linear(backbone.feature_dims[backbone.default_feature_layer], spec.embed_dim)
            self.image = FeatureExtractor(nn.Sequential(backbone, projection), tuple(spec.input_size),
                                          spec.mean, spec.std)
            self.text = TextEncoder(len(self.tokenizer), spec.max_length, spec.text_width, spec.text_layers,
                                    spec.text_heads, spec.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1 / 0.07)))))

    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Embeddings [N, D] (float32, CPU) of texts, in eval mode."""
        device = self.logit_scale.device
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = [self.text(self.tokenizer(texts[first:first + batch_size]).to(device)).float().cpu()
                   for first in range(0, len(texts), batch_size)]
        self.train(was_training)
        return torch.cat(out)


def save_dual_encoder(model: DualEncoder, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``model`` to a .safetensors file (format in the module docstring) plus str -> str ``metadata``."""
    from safetensors.torch import save_file

    spec = asdict(model.spec)
    meta = {**(metadata or {}), FORMAT_KEY: json.dumps(spec), "vocabulary": json.dumps(model.tokenizer.words[2:])}
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.fspath(path), metadata=meta)


def load_dual_encoder(path: str | os.PathLike) -> DualEncoder:
    """The DualEncoder saved in ``path`` (eval mode, CPU); ValueError if the file is not one."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dual-encoder file not found: {path!r}")
    try:
        with safe_open(path, "pt") as handle:
            meta = handle.metadata() or {}
        state = load_file(path)
    except SafetensorError as error:
        raise ValueError(f"could not read {path!r} as a safetensors file: {error}") from error
    if FORMAT_KEY not in meta or "vocabulary" not in meta:
        raise ValueError(f"{path!r} is not a dual-encoder file (its metadata has no {FORMAT_KEY!r} entry); "
                         f"scripts/train_dual_encoder.py writes one")
    spec = json.loads(meta[FORMAT_KEY])
    spec = DualEncoderSpec(**{**spec, "input_size": tuple(spec["input_size"]), "mean": tuple(spec["mean"]),
                              "std": tuple(spec["std"])})
    model = DualEncoder(spec, json.loads(meta["vocabulary"]))
    model.load_state_dict(state)
    return model.eval()


def dual_encoder_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a dual-encoder file (training settings and scores among them)."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), "pt") as handle:
        return dict(handle.metadata() or {})
