"""Model zoo: Re-ID networks in plain PyTorch whose parameter names match the published
checkpoints (torchreid OSNet, ReID-Survey AGW), a ReIDModel wrapper, and local weight I/O."""

from .agw import AGW, GeMPooling, NonLocalBlock, ResNet50NL
from .backbone import ReIDBackbone
from .extractor import FeatureExtractor
from .loading import LoadReport, load_weights, save_safetensors, saved_input_size
from .osnet import OSNet
from .registry import MODEL_NAMES, build_model
from .tiny import TinyCNN
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, ReIDModel

__all__ = [
    "AGW", "FeatureExtractor", "GeMPooling", "IMAGENET_MEAN", "IMAGENET_STD", "LoadReport", "MODEL_NAMES", "NonLocalBlock",
    "OSNet", "ReIDBackbone", "ReIDModel", "ResNet50NL", "TinyCNN", "build_model", "load_weights",
    "save_safetensors", "saved_input_size",
]
