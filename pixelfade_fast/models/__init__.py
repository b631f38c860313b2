"""Model zoo: Re-ID networks in plain PyTorch whose parameter names match the published
checkpoints (torchreid OSNet / OSNet-AIN / ResNet-50, fast-reid BoT, ReID-Survey AGW), a ReIDModel
wrapper, local weight I/O, and load_checkpoint_model for the toolkits' checkpoint files."""

from .agw import AGW, GeMPooling, NonLocalBlock, ResNet50NL
from .backbone import ReIDBackbone
from .checkpoints import CheckpointFacts, LoadedCheckpoint, load_checkpoint_model, matching_models
from .extractor import FeatureExtractor
from .fastreid import FastReIDBoT
from .loading import LoadReport, load_weights, save_safetensors
from .osnet import OSNet
from .osnet_ain import OSNetAIN
from .registry import MODEL_INFO, MODEL_NAMES, ModelInfo, backbone_layout, build_model, canonical_name
from .resnet import ResNet50
from .tiny import TinyCNN
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, ReIDModel

__all__ = [
    "AGW", "CheckpointFacts", "FastReIDBoT", "FeatureExtractor", "GeMPooling", "IMAGENET_MEAN", "IMAGENET_STD", "LoadReport",
    "LoadedCheckpoint", "MODEL_INFO", "MODEL_NAMES", "ModelInfo", "NonLocalBlock", "OSNet", "OSNetAIN",
    "ReIDBackbone", "ReIDModel", "ResNet50", "ResNet50NL", "TinyCNN", "backbone_layout", "build_model",
    "canonical_name", "load_checkpoint_model", "load_weights", "matching_models", "save_safetensors",
]
