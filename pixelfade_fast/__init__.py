"""pixelfade_fast: fast PixelFade protection of pedestrian image galleries.

    from pixelfade_fast import FadeConfig, protect
    result = protect(model, images)            # images: float [N, 3, H, W] in [0, 1]
    result.images, result.final_loss, result.met_epsilon
    stored = protect_for_storage(model, images, StorageFormat("jpeg", 90))   # ε of the decoded JPEG files
"""
from . import ops, reference
from ._backend import Backend, BackendStatus, backends, register_backend
from .config import FadeConfig
from .engine import ProtectResult, StoredResult, protect, protect_for_storage
from .schedules import Schedule
from .step_args import BatchConstants, StepFlags
from .storage_format import StorageFormat
from .version import __version__


__all__ = ["Backend", "BackendStatus", "BatchConstants", "FadeConfig", "ProtectResult", "Schedule", "StepFlags",
           "StorageFormat", "StoredResult", "backends", "ops", "protect", "protect_for_storage", "reference",
           "register_backend"]
