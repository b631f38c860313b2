"""The protection engine: ``protect(model, images, config)`` and the pieces it is made of.

features.py   the model as the engine sees it (per-image loss, frozen weights, features of a pixel set)
checks.py     input checks with messages that say what to do
step.py       the fused step's calling form (step_args' per-step flags and per-batch constants)
loop.py       ``FadeLoop``: one batch shape's loop on static buffers with a device step counter
graph.py      CUDA-graph capture of a whole step
fold_batchnorm.py  BatchNorm folding into the preceding conv/linear layer, checked on a probe batch
acceleration.py  model-side speed options (BatchNorm folding, channels_last, bf16, compile, graphs)
protector.py  ``Protector``: set-up, the loop and the one batch driver (``protect_all``) shared by protect(),
              the gallery, the ablations and the baselines
tuning.py     the per-machine speed choice (batch size, layout, folding), measured, capped in cost and cached
protect.py    ``protect()`` and ``ProtectResult``
jpeg_surrogate.py  a differentiable JPEG encode + decode that codec-aware loops measure the loss through
stored.py     protection for a storage format: ε checked on the decoded file, the bounded fallback,
              ``protect_for_storage()``

The model's input space is ``pixelfade_fast.input_space.InputSpace``; its output and device conventions are
in ``pixelfade_fast.feature_model`` (leaf modules that the models import too).
"""
from .acceleration import Acceleration, PreparedModel, prepare_model
from .checks import check_batch_size, check_features, check_images, check_uids
from .features import FeatureFn, extract_features, frozen, nvtx_range, per_image_loss
from .loop import FadeLoop, Observer, StepRecord
from .protect import ProtectResult, protect
from .protector import DEFAULT_BATCH, BatchResult, BatchRun, BatchSetup, Protector
from .step import StepFn, fused_step
from .stored import StoredBatch, StoredResult, StoringProtector, co_only_config, protect_for_storage

__all__ = ["Acceleration", "BatchResult", "BatchRun", "BatchSetup", "DEFAULT_BATCH", "FadeLoop",
           "FeatureFn", "Observer", "PreparedModel", "ProtectResult", "Protector", "StepFn", "StepRecord",
           "check_batch_size", "check_features", "check_images", "check_uids", "extract_features",
           "frozen", "fused_step", "nvtx_range", "per_image_loss", "prepare_model", "protect",
           "StoredBatch", "StoredResult", "StoringProtector", "co_only_config", "protect_for_storage"]
