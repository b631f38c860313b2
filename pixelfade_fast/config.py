"""FadeConfig: every knob of PixelFade, with the paper's defaults (Sec. 4.1.4) and validation."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import torch

from .reference.ops import NORMS

SCHEDULES = ("paper", "released")
MASK_GRANULARITIES = ("element", "pixel")
CLAMPS = ("pixel", "data")
CO_STEPS = ("backtrack", "fixed")
EPSILON_SCALES = ("relative", "absolute")


def _allowed(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """The allowed range in words ("at least 1", "between 0 and 95", "at least 0.0 and below 1.0")."""
    lower = f"{'greater than' if low_open else 'at least'} {low}"
    if high is None:
        return lower
    if not (low_open or high_open):
        return f"between {low} and {high}"
    return f"{lower} and {'below' if high_open else 'at most'} {high}"


def _check_int(name: str, value, low: int, high: int | None = None, why: str = "") -> None:
    """``why``: appended to the range error (how the range follows from other fields)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"FadeConfig.{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"FadeConfig.{name} must be {_allowed(low, high)}, got {value}{why}")


def _check_float(name: str, value, low: float, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"FadeConfig.{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or value in (float("inf"), float("-inf")):
        raise ValueError(f"FadeConfig.{name} must be {_allowed(low, high, low_open, high_open)}, got {value}")


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"FadeConfig.{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class FadeConfig:
    """PixelFade hyper-parameters; each field's meaning is its ``help`` metadata (also ``pixelfade protect -h``).

    Defaults follow the paper (T=100, 5 init and 5 final steps, I=5, ε=0.03, α=0.6, β=0.01) and the authors'
    released code where the paper is silent (l1mean normaliser, element masks), plus three rules of ours for meeting
    ε per image on any model: ``epsilon_scale="relative"`` (ε_i = ε · mean_d f0_i², so the constraint follows the
    model's feature scale as Re-ID matching does), ``finish_steps=50`` (CO-only steps after T for the images still
    at or above ε) and ``co_step="backtrack"`` (each image's CO-only step size x0.8 after a step that raised its
    loss by more than ``rise_tolerance``, 5%, x1.05 up to 4β after any other). ``epsilon_scale="absolute",
    finish_steps=0, co_step="fixed"`` is the paper's loop exactly. Measured in bench/bench_constraint.py
    (bench/results/constraint_cuhk01_cpu.csv, docs/results/constraint.md). A bad value raises ValueError naming the
    field and its range.
    """

    steps: int = field(default=100, metadata={
        "help": "T: protection steps, the init and final steps among them (at least 1)"})
    init_steps: int = field(default=5, metadata={
        "help": "T_init: warm-up steps that do CO and PRO on every image; the first of the T steps (init + final "
                "steps at most T)"})
    final_steps: int = field(default=5, metadata={
        "help": "T_final: closing CO-only steps; the last of the T steps (init + final steps at most T)"})
    num_masks: int = field(default=5, metadata={"help": "I: disjoint replacement masks (1..255)"})
    epsilon: float = field(default=0.03, metadata={
        "help": "ε: per-image feature-loss threshold (a fraction of mean_d f0² or an absolute loss: epsilon_scale)"})
    alpha: float = field(default=0.6, metadata={"help": "α: momentum decay, in [0, 1)"})
    beta: float = field(default=0.01, metadata={"help": "β: CO step size"})
    beta_unsat: float = field(default=0.04, metadata={
        "help": "step size of the 'released' schedule while the batch is above ε"})
    schedule: str = field(default="paper", metadata={
        "help": "'paper': decided per image (Algorithm 1); 'released': the authors' code, one decision per batch",
        "choices": SCHEDULES})
    norm: str = field(default="l1mean", metadata={
        "help": "gradient normaliser: mean |G| (released code) or sum G² (paper Eq. 3)", "choices": NORMS})
    masks: str = field(default="element", metadata={
        "help": "'element': each value has its own mask id; 'pixel': all channels of a pixel share one",
        "choices": MASK_GRANULARITIES})
    clamp: str = field(default="pixel", metadata={
        "help": "'pixel': every image stays a valid [0, 1] image; 'data': the batch's min/max (released code)",
        "choices": CLAMPS})
    feature_norm: bool = field(default=False, metadata={"help": "L2-normalise features before the loss"})
    finish_steps: int = field(default=50, metadata={
        "help": "extra CO-only steps after T for the images still at or above ε (0: the paper's loop exactly)"})
    quantize: bool = field(default=False, metadata={
        "help": "round to the 8-bit pixel grid in the CO-only closing steps (the gallery always does)"})
    epsilon_scale: str = field(default="relative", metadata={
        "help": "'relative': each image's threshold is ε · mean_d f0², its own mean squared feature (follows the "
                "model's feature scale); 'absolute': ε itself (the paper's)", "choices": EPSILON_SCALES})
    co_step: str = field(default="backtrack", metadata={
        "help": "step size of the CO-only steps of the 'paper' schedule: 'backtrack' (per image: x0.8 after a "
                "CO-only step that raised the loss by more than rise_tolerance, x1.05 up to beta_max_factor·β after "
                "any other), or 'fixed' (β, the paper's)", "choices": CO_STEPS})
    beta_max_factor: float = field(default=4.0, metadata={
        "help": "largest step size of a backtracking CO-only step, as a multiple of β (>= 1)"})
    rise_tolerance: float = field(default=0.05, metadata={
        "help": "how much a backtracking CO-only step may raise an image's loss, as a fraction, before its step size "
                "shrinks (in [0, 1); momentum makes small rises at a good step size)"})

    def __post_init__(self) -> None:
        _check_int("steps", self.steps, 1)
        inside = f": the init and final steps count inside FadeConfig.steps ({self.steps})"
        _check_int("init_steps", self.init_steps, 0, self.steps, f"{inside}; raise FadeConfig.steps or lower "
                   f"FadeConfig.init_steps")
        _check_int("final_steps", self.final_steps, 0, self.steps - self.init_steps,
                   f"{inside} after the {self.init_steps} of FadeConfig.init_steps; raise FadeConfig.steps or "
                   f"lower FadeConfig.final_steps or FadeConfig.init_steps")
        _check_int("num_masks", self.num_masks, 1, 255)
        _check_int("finish_steps", self.finish_steps, 0, 10_000)
        _check_float("epsilon", self.epsilon, 0.0, low_open=True)
        _check_float("alpha", self.alpha, 0.0, 1.0, high_open=True)
        _check_float("beta", self.beta, 0.0, low_open=True)
        _check_float("beta_unsat", self.beta_unsat, 0.0, low_open=True)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("masks", self.masks, MASK_GRANULARITIES)
        _check_choice("clamp", self.clamp, CLAMPS)
        _check_choice("epsilon_scale", self.epsilon_scale, EPSILON_SCALES)
        _check_choice("co_step", self.co_step, CO_STEPS)
        _check_float("beta_max_factor", self.beta_max_factor, 1.0)
        _check_float("rise_tolerance", self.rise_tolerance, 0.0, 1.0, high_open=True)
        for flag in ("feature_norm", "quantize"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"FadeConfig.{flag} must be True or False, got {getattr(self, flag)!r}")

    @property
    def pixel_masks(self) -> bool:
        return self.masks == "pixel"

    def epsilon_of(self, target: torch.Tensor) -> torch.Tensor:
        """ε per image [B] for targets f0 [B, D]: ε · mean_d f0² (relative), or ε (absolute)."""
        if self.epsilon_scale == "relative":
            return (self.epsilon * target.float().square().mean(dim=1)).clamp_min(1e-12)
        return torch.full((target.shape[0],), self.epsilon, dtype=torch.float32, device=target.device)

    def met_epsilon_rate(self, loss: torch.Tensor, target: torch.Tensor) -> float:
        """The fraction of images whose feature loss [B] is below their ε (targets f0 [B, D]); for reports, after
        protection (it reads the result on the host)."""
        return float((loss < self.epsilon_of(target)).float().mean())

    @property
    def total_steps(self) -> int:
        """Steps the loop runs: T plus the bounded finishing steps."""
        return self.steps + self.finish_steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Short stable hash of the settings (written to manifests; never includes the seed)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
