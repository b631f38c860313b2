"""The per-machine speed choice: memory layout, BatchNorm folding and batch size, measured where the run happens.

Which of these is fastest depends on the CPU, the thread count, the model and the batch (docs/performance.md),
so, as cuDNN's benchmark mode does, ``choose_speed`` times a few real protection steps of each candidate on the
run's own model and input size, interleaved (every candidate once per round, medians over the rounds), and picks
the fastest. The choice changes the bits (the batch plan, the layout's and the folded weights' rounding), so it is
part of what a run depends on: the gallery records it in run.json and ``--resume`` / ``refine`` reuse it; a
dimension given explicitly is never tuned (all three given: nothing is measured). The cost is capped at
``COST_FRACTION`` of the run's estimated time, tiny runs are not tuned, and a choice is cached per machine (device
model, CPU threads, torch), model digest, input shape, backend and candidate set, in ``cache_path()``.
torch.compile is never a candidate: compiling each candidate's shape would cost more than the cap (docs).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..atomic_file import write_bytes_atomic
from .. import _backend
from ..config import FadeConfig
from ..feature_model import model_device
from ..machine import device_name
from ..reference.rng import derive_keys
from .acceleration import Acceleration
from .protector import Protector

CACHE_ENV = "PIXELFADE_TUNING_CACHE"  # a file path; overrides the default place (tests use a temporary one)
CACHE_FORMAT = 1
COST_FRACTION = 0.05  # the tuning may cost at most this fraction of the run's estimated time
MIN_IMAGES = 256  # smaller runs are not tuned by default: the measurement would not pay for itself
BATCH_CANDIDATES = {"cpu": (16, 32, 64), "cuda": (64, 128, 256)}
STEPS_PER_TRY = 2  # protection steps per timed try of a candidate
ROUNDS = 3  # timed tries of each candidate, interleaved; the median counts
PRUNE_RATIO = 1.25  # after the first round, candidates slower than this times the fastest are dropped


def cache_path() -> Path:
    """Where choices are cached: $PIXELFADE_TUNING_CACHE, else $XDG_CACHE_HOME/pixelfade_fast/tuning.json, else
    ~/.cache/pixelfade_fast/tuning.json."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pixelfade_fast" / "tuning.json"


@dataclass(frozen=True)
class Candidate:
    """One way to run the model: batch size, memory layout (NHWC when channels_last) and BatchNorm folding."""

    batch_size: int
    channels_last: bool
    fold_batchnorm: bool

    @property
    def label(self) -> str:
        return (f"batch {self.batch_size}, {'NHWC' if self.channels_last else 'NCHW'}, "
                f"BatchNorm {'folded' if self.fold_batchnorm else 'kept'}")


@dataclass(frozen=True)
class SpeedChoice:
    """What the tuner chose and what it measured: recorded in run.json and ``ProtectResult.timings``.

    measured: each candidate's label -> median ms per image and step (those dropped after the first round have
    one try; those the cost cap left out are absent). candidates: how many there were. cost_s: seconds the
    measurement took (when the choice comes from the cache: what it cost then). source: "measured" or "cache".
    """

    choice: Candidate
    ms_per_image_step: float
    measured: dict
    candidates: int
    cost_s: float
    source: str

    def summary(self) -> str:
        origin = (f"measured {len(self.measured)} of {self.candidates} candidates in {self.cost_s:.1f} s"
                  if self.source == "measured"
                  else f"cached choice, measured earlier in {self.cost_s:.1f} s; {cache_path()}")
        return f"speed choice: {self.choice.label}: {self.ms_per_image_step:.2f} ms per image and step ({origin})"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SpeedChoice:
        return cls(Candidate(**data["choice"]), float(data["ms_per_image_step"]), dict(data["measured"]),
                   int(data["candidates"]), float(data["cost_s"]), str(data["source"]))


@dataclass(frozen=True)
class SpeedSettings:
    """How a run evaluates its model and batches its images, and why: ``tuning`` is the tuner's record (None when
    nothing was measured), ``note`` says in words why not or what was chosen."""

    batch_size: int
    acceleration: Acceleration
    tuning: SpeedChoice | None
    note: str


def choose_speed(model: nn.Module, image_shape: tuple[int, int, int], config: FadeConfig, *, images: int,
                 backend: str | None, acceleration: Acceleration | None, batch_size: int | None,
                 default_batch: int, tune: bool | None) -> SpeedSettings:
    """The batch size and speed options of a run of ``images`` images of ``image_shape`` (C, H, W).

    batch_size / acceleration.channels_last / acceleration.fold_batchnorm: None means "not given"; a given one is
    kept. tune: True measures the dimensions not given; None (auto) does so only on the CPU for runs of at least
    MIN_IMAGES images; False never does (the device defaults, ``default_batch``). Not tuned either: all three
    given, or torch.compile on."""
    acceleration = acceleration or Acceleration()
    device = model_device(model, torch.device("cpu"))
    fixed = Candidate(batch_size, acceleration.channels_last, acceleration.fold_batchnorm)
    candidates = _candidates(fixed, device, images)
    why_not = _why_not_tuned(tune, device, images, acceleration, candidates)
    if why_not is not None:
        return SpeedSettings(batch_size or default_batch, acceleration, None, why_not)
    backend = _backend.resolve(backend, device)
    key = _cache_key(model, image_shape, backend, acceleration, candidates, device)
    cached = _read_cache().get(key)
    if cached is not None:
        choice = dataclasses.replace(SpeedChoice.from_dict(cached), source="cache")
    else:
        choice = _measure(model, image_shape, config, backend, acceleration, candidates, images)
        if len(choice.measured) == choice.candidates:  # a choice the cost cap cut short is not kept for larger runs
            _write_cache(key, choice)
    chosen = dataclasses.replace(acceleration, channels_last=choice.choice.channels_last,
                                 fold_batchnorm=choice.choice.fold_batchnorm)
    return SpeedSettings(choice.choice.batch_size, chosen, choice, choice.summary())


def _candidates(fixed: Candidate, device: torch.device, images: int) -> list[Candidate]:
    """Every combination of the dimensions not fixed; batch sizes above the run's image count are left out."""
    sizes = BATCH_CANDIDATES.get(device.type, BATCH_CANDIDATES["cpu"])
    batches = [fixed.batch_size] if fixed.batch_size else [b for b in sizes if b <= images] or [min(sizes)]
    layouts = [fixed.channels_last] if fixed.channels_last is not None else [False, True]
    folds = [fixed.fold_batchnorm] if fixed.fold_batchnorm is not None else [True, False]
    return [Candidate(b, c, f) for b in batches for c in layouts for f in folds]


def _why_not_tuned(tune: bool | None, device: torch.device, images: int, acceleration: Acceleration,
                   candidates: list[Candidate]) -> str | None:
    if tune is False:
        return "speed not tuned (--no-tune): the given settings and the device's defaults"
    if len(candidates) == 1:
        return "speed not tuned: batch size, layout and BatchNorm folding all given"
    if acceleration.compile:
        return "speed not tuned: torch.compile is on (compiling every candidate would cost more than the run gains)"
    if tune is None and device.type != "cpu":
        return f"speed not tuned: tuning is automatic on the CPU only (--tune measures on {device.type})"
    if tune is None and images < MIN_IMAGES:
        return f"speed not tuned: {images} images, fewer than the {MIN_IMAGES} that tuning pays off for (--tune forces it)"
    return None


def _cache_key(model: nn.Module, image_shape: tuple, backend: str, acceleration: Acceleration,
               candidates: list[Candidate], device: torch.device) -> str:
    """Everything the timings depend on: machine (device model, CPU threads, torch), model, shape, backend, the
    options that are not candidates, and the candidate set."""
    from ..models.digest import state_digest  # here: importing the engine must not load the model zoo
    parts = {"device": device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
             "model": state_digest(model), "shape": list(image_shape), "backend": backend,
             "amp": acceleration.amp, "cuda_graph": acceleration.cuda_graph,
             "compact_every": acceleration.compact_every,
             "candidates": [dataclasses.astuple(c) for c in candidates]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _read_cache() -> dict:
    """The cached choices (key -> SpeedChoice dict); an unreadable or foreign file counts as empty (it is a cache:
    the next write replaces it)."""
    try:
        data = json.loads(cache_path().read_text())
        return data["choices"] if data.get("format") == CACHE_FORMAT else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_cache(key: str, choice: SpeedChoice) -> None:
    """Add ``choice`` to the cache file, atomically; a cache that cannot be written only costs a new measurement
    next time."""
    path = cache_path()
    choices = _read_cache() | {key: choice.to_dict()}
    text = json.dumps({"format": CACHE_FORMAT, "choices": choices}, indent=1, sort_keys=True)
    with contextlib.suppress(OSError):
        write_bytes_atomic(path, text.encode())


def _probe_images(count: int, image_shape: tuple, device: torch.device) -> torch.Tensor:
    """Smooth random pixels (the cost of a step does not depend on the picture)."""
    generator = torch.Generator().manual_seed(0)
    channels, height, width = image_shape
    coarse = torch.rand(count, channels, max(1, height // 16), max(1, width // 16), generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return (smooth + 0.1 * torch.rand(count, channels, height, width, generator=generator)).clamp(0, 1).to(device)


def _measure(model: nn.Module, image_shape: tuple, config: FadeConfig, backend: str, acceleration: Acceleration,
             candidates: list[Candidate], images: int) -> SpeedChoice:
    """Time STEPS_PER_TRY steps of each candidate per round, ROUNDS rounds interleaved, within the cost cap."""
    device = model_device(model, torch.device("cpu"))
    started = time.perf_counter()
    short = dataclasses.replace(config, steps=STEPS_PER_TRY, init_steps=1, final_steps=1, finish_steps=0)
    pixels = _probe_images(max(c.batch_size for c in candidates), image_shape, device)
    keys = derive_keys(1, range(pixels.shape[0]))
    warm: dict[Candidate, float] = {}  # each candidate's first try: set-up (folding, first use of the kernels)
    tries: dict[Candidate, list[float]] = {}  # the timed tries
    with contextlib.ExitStack() as stack:
        protectors: dict[tuple, Protector] = {}
        setups = {}

        def one_try(candidate: Candidate) -> float:
            protector = protectors[(candidate.channels_last, candidate.fold_batchnorm)]
            begin = time.perf_counter()
            protector.run(setups[candidate])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return 1000.0 * (time.perf_counter() - begin) / (candidate.batch_size * STEPS_PER_TRY)

        def affordable(candidate: Candidate, first: bool) -> bool:
            """Whether a try of ``candidate`` (a first one costs about twice: set-up) still fits in COST_FRACTION
            of the run's time, both estimated at the fastest speed seen so far (the first try always runs). A first
            try's speed counts at half: its set-up would otherwise inflate the run's estimate, and so the cap."""
            seen = [statistics.median(v) for v in tries.values()] + [t / 2 for t in warm.values()]
            if not seen:
                return True
            fastest_s = min(seen) / 1000.0
            cost = fastest_s * candidate.batch_size * STEPS_PER_TRY * (2 if first else 1)
            spent = time.perf_counter() - started
            return spent + cost <= COST_FRACTION * fastest_s * images * config.total_steps

        for candidate in candidates:
            if not affordable(candidate, first=True):
                continue
            layout = (candidate.channels_last, candidate.fold_batchnorm)
            if layout not in protectors:
                options = dataclasses.replace(acceleration, channels_last=candidate.channels_last,
                                              fold_batchnorm=candidate.fold_batchnorm)
                protectors[layout] = stack.enter_context(Protector(model, short, backend=backend, acceleration=options))
            setups[candidate] = protectors[layout].setup(pixels[:candidate.batch_size], keys[:candidate.batch_size])
            warm[candidate] = one_try(candidate)
        alive = list(warm)
        for round_ in range(ROUNDS):
            for candidate in alive:
                if affordable(candidate, first=False):
                    tries.setdefault(candidate, []).append(one_try(candidate))
            if round_ == 0:  # drop the clearly slower ones: their further tries would not change the choice
                if not tries:  # the cap allowed no timed try: the first tries decide
                    tries = {c: [t] for c, t in warm.items()}
                fastest = min(v[0] for v in tries.values())
                alive = [c for c in alive if c in tries and tries[c][0] <= PRUNE_RATIO * fastest]
    medians = {c: statistics.median(v) for c, v in tries.items()}
    best = min(medians, key=medians.get)
    return SpeedChoice(best, round(medians[best], 4), {c.label: round(m, 4) for c, m in medians.items()},
                       len(candidates), round(time.perf_counter() - started, 2), "measured")
