"""How big the recovery attack is: ``AttackSettings`` and its named presets.

One frozen record holds every knob of the attacker (network size, training length, pairs, augmentation,
optimiser, learning-rate schedule, loss), so that a report can state the attack it ran in one line and every
method of a run is attacked the same way. The presets:

- ``tiny``: tests, seconds on 32x16 images.
- ``demo``: ``make demo`` (SynthPed 128x64), about a minute on 2 CPU cores for floor + three methods.
- ``strong``: reports, sized to about 30-40 minutes on this 2-core CPU for floor + blur + mosaic on CUHK01 at
  256x128, training pairs from every training identity (measured in docs/results/attack_strength.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

OPTIMISERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
LOSSES = ("l1", "l1+ssim")


@dataclass(frozen=True)
class AttackSettings:
    """The recovery attacker (paper Sec. 4.1.2: a U-Net trained with L1 on protected -> original pairs).

    width, depth: the RecoveryUNet's first-level channels and number of down-sampling levels.
    input_skip: the U-Net's full-resolution 1x1 path from input to output logits (unet.py).
    blocks: residual 3x3 blocks after each U-Net level (unet.py; 0: the plain pix2pix U-Net).
    epochs: passes over the training pairs.  max_pairs: attacker training images (None: all of them).
    batch_size: pairs per step.  optimiser: "adam" (β = (0.5, 0.999), pix2pix) or "adamw" (default betas).
    lr: peak learning rate.  weight_decay: AdamW's decoupled decay (must be 0 for "adam").
    schedule: "constant", "cosine" (linear warm-up for ``warmup`` of the steps, then cosine to 0) or
        "onecycle" (torch's OneCycleLR with ``warmup`` as its pct_start).
    loss: "l1", or "l1+ssim" (L1 + ssim_weight · (1 − SSIM)).
    flip: random horizontal flips.  shift: random translations of up to this many pixels (edge-replicated).
    crop: (H, W) to train on random crops of that size (the same crop of input and original; protection, if
        done on the fly, sees the whole image first; clamped to the image size), or None for whole images.
        Scoring is always on whole images.
    colour_jitter: random per-channel gain in [1 − s, 1 + s] and offset in [−s/2, s/2]; applied only where the
        attacker protects each augmented original afresh (pixel filters such as blur and mosaic), because a
        jittered PixelFade image is not the protection of a jittered original.
    """

    width: int = 32
    depth: int = 4
    input_skip: bool = False
    blocks: int = 0
    epochs: int = 10
    max_pairs: int | None = 512
    batch_size: int = 16
    optimiser: str = "adam"
    lr: float = 2e-4
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.1
    loss: str = "l1"
    ssim_weight: float = 0.0
    flip: bool = False
    shift: int = 0
    crop: tuple[int, int] | None = None
    colour_jitter: float = 0.0

    def __post_init__(self) -> None:
        for name, low in (("width", 1), ("depth", 1), ("epochs", 1), ("batch_size", 1), ("shift", 0),
                          ("blocks", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"AttackSettings.{name} must be an integer >= {low}, got {value!r}")
        if self.max_pairs is not None and (isinstance(self.max_pairs, bool) or not isinstance(self.max_pairs, int)
                                           or self.max_pairs < 1):
            raise ValueError(f"AttackSettings.max_pairs must be a positive integer or None (every training image), "
                             f"got {self.max_pairs!r}")
        for name, choices in (("optimiser", OPTIMISERS), ("schedule", SCHEDULES), ("loss", LOSSES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"AttackSettings.{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("flip", "input_skip"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"AttackSettings.{name} must be True or False, got {getattr(self, name)!r}")
        if self.crop is not None:
            crop = tuple(self.crop) if isinstance(self.crop, (tuple, list)) else ()
            if len(crop) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in crop):
                raise ValueError(f"AttackSettings.crop must be None or (H, W) positive integers, got {self.crop!r}")
            object.__setattr__(self, "crop", crop)
        for name, low, high, low_open in (("lr", 0.0, None, True), ("weight_decay", 0.0, None, False),
                                          ("warmup", 0.0, 1.0, True), ("ssim_weight", 0.0, None, False),
                                          ("colour_jitter", 0.0, 1.0, False)):
            value = getattr(self, name)
            valid = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
            valid = valid and (value > low if low_open else value >= low) and (high is None or value < high)
            valid = valid and value != float("inf")
            if not valid:
                bounds = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")
                raise ValueError(f"AttackSettings.{name} must be a number {bounds}, got {value!r}")
        if self.optimiser == "adam" and self.weight_decay != 0:
            raise ValueError("AttackSettings.weight_decay needs optimiser='adamw' (Adam's coupled L2 is not offered)")
        if (self.loss == "l1+ssim") != (self.ssim_weight > 0):
            raise ValueError(f"AttackSettings: loss 'l1+ssim' needs ssim_weight > 0 and loss 'l1' needs "
                             f"ssim_weight 0, got loss={self.loss!r}, ssim_weight={self.ssim_weight!r}")

    def describe(self) -> str:
        """One line for reports: what network, how long, on what, how."""
        pairs = "every training image" if self.max_pairs is None else f"at most {self.max_pairs} training images"
        crop = f"random {self.crop[0]}x{self.crop[1]} crops" if self.crop else ""
        augment = [name for name, on in (("flips", self.flip), (f"shifts ≤{self.shift} px", self.shift > 0),
                                         (crop, bool(crop)),
                                         (f"colour jitter {self.colour_jitter:g} (pixel filters only)",
                                          self.colour_jitter > 0)) if on]
        loss = "L1" if self.loss == "l1" else f"L1 + {self.ssim_weight:g}·(1 − SSIM)"
        optimiser = "Adam" if self.optimiser == "adam" else f"AdamW (decay {self.weight_decay:g})"
        skip = (f" + {self.blocks} residual blocks per level" if self.blocks else "") + (
            " + input skip" if self.input_skip else "")
        return (f"U-Net width {self.width}, depth {self.depth}{skip}; {self.epochs} epochs on {pairs}, batch "
                f"{self.batch_size}; {loss}; {optimiser}, lr {self.lr:g}, {self.schedule} schedule; augmentation: "
                f"{', '.join(augment) if augment else 'none'}")


ATTACK_PRESETS: dict[str, AttackSettings] = {
    "tiny": AttackSettings(width=16, depth=4, epochs=10, max_pairs=64, batch_size=8, lr=2e-3),
    "demo": AttackSettings(width=16, depth=4, input_skip=True, epochs=8, max_pairs=64, batch_size=16,
                           optimiser="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle", flip=True),
    # chosen by measurement (docs/results/attack_strength.md): on CUHK01 at 256x128 two residual blocks per level,
    # 24 epochs and an equal L1/SSIM loss recover blur at +7.8 dB / +0.20 SSIM over the mean-image floor, where the
    # 2-epoch plain U-Net reached +4.8 dB / +0.08; each of floor, blur and mosaic on all 1940 training images takes
    # 24 min at one CPU thread. The 128x64 crops make a step about 4x cheaper than whole images.
    "strong": AttackSettings(width=16, depth=5, blocks=2, input_skip=True, epochs=24, max_pairs=None, batch_size=16,
                             optimiser="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle", warmup=0.1,
                             loss="l1+ssim", ssim_weight=1.0, flip=True, crop=(128, 64)),
}


def attack_preset(name: str, **overrides) -> AttackSettings:
    """The named preset, with any field replaced by ``overrides`` (validated like the preset itself)."""
    if name not in ATTACK_PRESETS:
        raise ValueError(f"unknown attack preset {name!r}; choose from {', '.join(ATTACK_PRESETS)}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(AttackSettings)})
    if unknown:
        raise ValueError(f"unknown AttackSettings fields {unknown}; known: "
                         f"{', '.join(f.name for f in dataclasses.fields(AttackSettings))}")
    return dataclasses.replace(ATTACK_PRESETS[name], **overrides)
