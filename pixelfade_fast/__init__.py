"""pixelfade_fast: fast PixelFade protection of pedestrian image galleries.

    from pixelfade_fast import FadeConfig, protect
    result = protect(model, images)            # images: float [N, 3, H, W] in [0, 1]
    result.images, result.final_loss, result.met_epsilon
"""
from . import ops, reference
from ._backend import Backend, BackendStatus, backends, register_backend
from .config import FadeConfig
from .engine import ProtectResult, protect
from .schedules import Schedule
from .step_args import BatchConstants, StepFlags
from .version import __version__


__all__ = ["Backend", "BackendStatus", "BatchConstants", "FadeConfig", "ProtectResult", "Schedule", "StepFlags",
           "backends", "ops", "protect", "reference", "register_backend"]
