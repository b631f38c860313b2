"""The protection engine: ``protect(model, images, config)`` and the pieces it is made of.

features.py   the model as the engine sees it (features, per-image loss, input space, frozen)
checks.py     input checks with messages that say what to do
step.py       the fused step's calling form (per-step flags, per-batch constants) and 8-bit rounding
loop.py       ``FadeLoop``: one batch shape's loop on static buffers with a device step counter
graph.py      CUDA-graph capture of a whole step
acceleration.py  model-side speed options (BatchNorm folding, channels_last, bf16, compile, graphs)
protector.py  ``Protector``: set-up and loops shared by protect(), the gallery, ablations and baselines
protect.py    ``protect()`` and ``ProtectResult``
"""
from .acceleration import Acceleration, PreparedModel, prepare_model
from .checks import check_batch_size, check_features, check_images, check_uids
from .features import (FeatureFn, extract_features, features_of, frozen, model_device, normalisation,
                       nvtx_range, per_image_loss)
from .loop import FadeLoop, Observer, StepRecord
from .protect import DEFAULT_BATCH, ProtectResult, protect
from .protector import BatchResult, BatchSetup, Protector
from .step import BatchConstants, PixelQuantizer, StepFn, check_step, fused_step

__all__ = ["Acceleration", "BatchConstants", "BatchResult", "BatchSetup", "DEFAULT_BATCH", "FadeLoop", "FeatureFn", "Observer",
           "PixelQuantizer", "PreparedModel", "ProtectResult", "Protector", "StepFn", "StepRecord",
           "check_batch_size", "check_features", "check_images", "check_step", "check_uids", "extract_features",
           "features_of", "frozen", "fused_step", "model_device", "normalisation", "nvtx_range", "per_image_loss",
           "prepare_model", "protect"]
