"""Whether the Triton kernels can run here, and why not. Imports nothing from triton at module load."""
import torch

_import_error: str | None = None  # None until checked; "" once triton imported fine
_interpreted: bool | None = None  # set by the package once its kernels exist


def triton_import_error() -> str:
    """Empty when triton imports and torch can wrap its kernels, else what failed and how to fix it."""
    global _import_error
    if _import_error is None:
        if not hasattr(torch.library, "triton_op"):
            _import_error = f"torch {torch.__version__} has no torch.library.triton_op; torch >= 2.6 is needed"
            return _import_error
        try:
            import triton  # noqa: F401
        except Exception as exc:  # ImportError, or a broken install failing on load
            _import_error = (f"triton is not importable ({type(exc).__name__}: {exc}); "
                             f"install it with `pip install pixelfade_fast[triton]`")
        else:
            _import_error = ""
    return _import_error


def set_interpreted(interpreted: bool) -> None:
    """Record whether the kernels were built for Triton's CPU interpreter (TRITON_INTERPRET=1 at import)."""
    global _interpreted
    _interpreted = interpreted


def unavailable_reason(device: str | torch.device | None = None) -> str:
    """Empty when the kernels can run on ``device`` (None: on some device here), else the reason."""
    error = triton_import_error()
    if error:
        return error
    kind = None if device is None else torch.device(device).type
    interpreted = bool(_interpreted)
    if kind == "cpu" or (kind is None and not torch.cuda.is_available()):
        if interpreted:
            return ""
        return ("Triton kernels run on CPU tensors only under Triton's interpreter: set TRITON_INTERPRET=1 "
                "before pixelfade_fast.kernels is first imported" + ("" if kind else ", or use a CUDA device"))
    if kind in (None, "cuda"):
        return "" if torch.cuda.is_available() else "no CUDA device is available"
    return f"Triton kernels run on CUDA tensors (or CPU tensors under TRITON_INTERPRET=1), got a {kind} tensor"


def available(device: str | torch.device | None = None) -> bool:
    """True when the kernels can run on ``device`` (None: on some device here)."""
    return not unavailable_reason(device)
