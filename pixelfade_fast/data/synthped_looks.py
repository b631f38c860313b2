"""SynthPed: random draws of what an identity wears, how a camera sees, and one shot's pose and nuisances.

Body geometry is in figure units: the person is 1 unit tall (top of head fy = 0, soles fy = 1), fx is
horizontal from the body axis. Colours are RGB in [0, 1].

Hard on purpose: every attribute is coarse (a few body types, a small clothing palette dominated by dark
colours, mostly plain clothes, few extras), so in a few hundred identities many people look alike, as
on real streets; and camera nuisances (colour cast, saturation, gain, blur, occlusion, viewpoint) are
strong, so that matching across cameras is hard even for a trained CNN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A small palette shared by all identities (name, RGB); dark colours dominate, as on real streets.
CLOTH_PALETTE = np.array([
    (0.10, 0.10, 0.11),  # black
    (0.85, 0.85, 0.82),  # white
    (0.48, 0.48, 0.50),  # grey
    (0.12, 0.15, 0.35),  # navy
    (0.68, 0.12, 0.12),  # red
    (0.22, 0.36, 0.68),  # blue
    (0.20, 0.42, 0.22),  # green
    (0.64, 0.58, 0.40),  # khaki
    (0.40, 0.26, 0.16),  # brown
    (0.86, 0.74, 0.22),  # yellow
    (0.84, 0.55, 0.62),  # pink
    (0.40, 0.22, 0.50),  # purple
], dtype=np.float32)
UPPER_WEIGHTS = np.array([8, 3, 3, 3, 1, 1.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3], dtype=np.float64)
LOWER_WEIGHTS = np.array([8, 0.2, 1.5, 3, 0, 5, 0, 1.5, 0.2, 0, 0, 0], dtype=np.float64)
BAG_COLOURS = CLOTH_PALETTE[[0, 2, 3, 7, 8]]
SKIN_TONES = np.array([(0.90, 0.74, 0.62), (0.72, 0.54, 0.40), (0.45, 0.31, 0.22)], dtype=np.float32)
HAIR_COLOURS = np.array([(0.06, 0.05, 0.05), (0.22, 0.14, 0.09), (0.42, 0.28, 0.16),
                         (0.80, 0.68, 0.42), (0.62, 0.62, 0.62)], dtype=np.float32)
HAIR_WEIGHTS = np.array([6, 3, 1, 0.5, 0.5], dtype=np.float64)
SHOE_COLOURS = CLOTH_PALETTE[[0, 0, 0, 1, 8]]  # mostly black
# Body types: head half-height, head width / height, neck length, shoulder half-width, waist / shoulder,
# hip line, leg radius, arm radius (figure units). Each person is one type varied by ±2 %.
BODY_TYPES = np.array([
    (0.060, 0.80, 0.020, 0.110, 0.85, 0.53, 0.038, 0.027),  # average
    (0.064, 0.78, 0.022, 0.098, 0.88, 0.55, 0.034, 0.025),  # slim, long torso
    (0.057, 0.84, 0.018, 0.130, 0.80, 0.51, 0.043, 0.031),  # broad, long legs
])

PATTERNS = ("plain", "hstripes", "vstripes", "plaid")
LOWER_KINDS = ("trousers", "shorts", "skirt")
BAG_KINDS = ("none", "shoulder", "backpack")


def _pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    """A colour varied per channel by up to ±amount (relative), so equal palette entries differ slightly."""
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class IdentityLook:
    """Everything that stays the same for one person across cameras."""

    head_ry: float          # head half-height
    head_rx: float          # head half-width
    shoulder_y: float       # fy of the shoulder line
    shoulder_hw: float      # shoulder half-width
    waist_hw: float         # waist half-width
    hip_y: float            # fy where the torso ends and the legs start
    coat_extra: float       # how far the upper garment reaches below the hip (long coats)
    leg_r: float
    arm_r: float
    short_sleeves: bool
    upper: np.ndarray
    upper_second: np.ndarray
    pattern: str
    pattern_period: float
    pattern_phase: float
    lower: np.ndarray
    lower_kind: str
    skin: np.ndarray
    hair: np.ndarray
    hair_fringe: float      # in front view hair covers the head above cy − fringe·ry
    hair_length: float      # long hair hangs this far below the shoulder line (0: short hair)
    hat: np.ndarray | None
    shoes: np.ndarray
    belt: np.ndarray | None
    logo: np.ndarray | None
    logo_box: tuple[float, float, float, float]  # chest logo (x0, y0, x1, y1); y below the shoulder line
    bag_kind: str
    bag_side: int           # −1 left / +1 right (flips with a mirrored view)
    bag: np.ndarray
    bag_size: tuple[float, float]


def sample_identity(rng: np.random.Generator) -> IdentityLook:
    """Draw one person's look."""
    head_ry, head_aspect, neck, shoulder_hw, waist, hip_y, leg_r, arm_r = (
        BODY_TYPES[rng.integers(len(BODY_TYPES))] * rng.uniform(0.98, 1.02, BODY_TYPES.shape[1]))
    pattern = PATTERNS[_pick(rng, np.array([12, 1, 0.5, 1.0]))]
    long_hair = rng.random() < 0.3
    logo_w, logo_h = (0.05, 0.03) if rng.random() < 0.5 else (0.03, 0.04)
    return IdentityLook(
        head_ry=head_ry,
        head_rx=head_ry * head_aspect,
        shoulder_y=2 * head_ry + neck,
        shoulder_hw=shoulder_hw,
        waist_hw=shoulder_hw * waist,
        hip_y=hip_y,
        coat_extra=0.12 if rng.random() < 0.1 else 0.0,
        leg_r=leg_r,
        arm_r=arm_r,
        short_sleeves=bool(rng.random() < 0.25),
        upper=_jitter(rng, CLOTH_PALETTE[_pick(rng, UPPER_WEIGHTS)], 0.03),
        upper_second=_jitter(rng, CLOTH_PALETTE[_pick(rng, UPPER_WEIGHTS)], 0.03),
        pattern=pattern,
        pattern_period=0.03 if rng.random() < 0.5 else 0.05,
        pattern_phase=rng.uniform(0, 1),
        lower=_jitter(rng, CLOTH_PALETTE[_pick(rng, LOWER_WEIGHTS)], 0.03),
        lower_kind=LOWER_KINDS[_pick(rng, np.array([7, 2, 1.0]))],
        skin=_jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 0.03),
        hair=_jitter(rng, HAIR_COLOURS[_pick(rng, HAIR_WEIGHTS)], 0.03),
        hair_fringe=0.3 if rng.random() < 0.5 else 0.0,
        hair_length=(0.06 if rng.random() < 0.5 else 0.14) if long_hair else 0.0,
        hat=_jitter(rng, CLOTH_PALETTE[_pick(rng, UPPER_WEIGHTS)], 0.03) if rng.random() < 0.05 else None,
        shoes=_jitter(rng, SHOE_COLOURS[rng.integers(len(SHOE_COLOURS))], 0.03),
        belt=_jitter(rng, CLOTH_PALETTE[0], 0.03) if rng.random() < 0.1 else None,
        logo=_jitter(rng, CLOTH_PALETTE[rng.integers(len(CLOTH_PALETTE))], 0.03) if rng.random() < 0.1 else None,
        logo_box=(-logo_w / 2, 0.03, logo_w / 2, 0.03 + logo_h),
        bag_kind=BAG_KINDS[_pick(rng, np.array([6, 2, 2.0]))],
        bag_side=int(rng.choice([-1, 1])),
        bag=_jitter(rng, BAG_COLOURS[rng.integers(len(BAG_COLOURS))], 0.03),
        bag_size=(0.065, 0.09) if rng.random() < 0.5 else (0.05, 0.075),
    )


@dataclass(frozen=True)
class CameraLook:
    """What one camera does to every image it takes."""

    bg_colours: np.ndarray       # [2, 3] ends of the background gradient
    bg_vertical: bool            # gradient direction
    texture_amp: float           # strength of the low-frequency background texture
    floor_y: float               # fraction of the crop height where the floor starts
    floor: np.ndarray
    clutter_colours: np.ndarray  # [4, 3] colours of background objects seen by this camera
    gain: float
    tint: np.ndarray             # per-channel colour cast
    saturation: float            # < 1 washes colours out, > 1 strengthens them
    gamma: float
    back_view_p: float           # how often people are seen from the back
    side_view_p: float           # how often from the side (a narrower figure)
    shear: float                 # horizontal shear (x shift per unit of y, in figure units)
    aspect: float                # horizontal stretch of the person
    scale: float                 # person height as a fraction of the crop height
    blur: float                  # Gaussian blur sigma in pixels at a 128-pixel-high crop
    occlusion_p: float
    noise: float


def sample_camera(rng: np.random.Generator) -> CameraLook:
    """Draw one camera's nuisances."""
    grey = rng.uniform(0.25, 0.75)
    bg = grey + rng.uniform(-0.25, 0.25, (2, 3))
    tint = rng.uniform(0.6, 1.4, 3)
    return CameraLook(
        bg_colours=np.clip(bg, 0.03, 0.97).astype(np.float32),
        bg_vertical=bool(rng.random() < 0.5),
        texture_amp=rng.uniform(0.03, 0.12),
        floor_y=rng.uniform(0.78, 0.95),
        floor=np.clip(rng.uniform(0.2, 0.7) + rng.uniform(-0.1, 0.1, 3), 0, 1).astype(np.float32),
        clutter_colours=rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32),
        gain=rng.uniform(0.55, 1.35),
        tint=(tint / tint.mean()).astype(np.float32),
        saturation=rng.uniform(0.0, 0.3) if rng.random() < 0.25 else rng.uniform(0.5, 1.3),  # 1 in 4 ~grey
        gamma=rng.uniform(0.75, 1.3),
        back_view_p=rng.uniform(0.15, 0.85),
        side_view_p=rng.uniform(0.0, 0.5),
        shear=rng.uniform(-0.12, 0.12),
        aspect=rng.uniform(0.82, 1.2),
        scale=rng.uniform(0.80, 0.96),
        blur=rng.uniform(0.3, 3.0),
        occlusion_p=rng.uniform(0.2, 0.6),
        noise=rng.uniform(0.005, 0.03),
    )


@dataclass(frozen=True)
class Shot:
    """One image's pose and per-image nuisances."""

    back_view: bool
    turn: float                  # horizontal compression of the figure: 1 front/back, < 1 side
    mirror: bool
    stride: float                # how far apart the feet are
    arm_swing: float
    scale: float                 # person height / crop height
    x_shift: float               # body axis offset, fraction of the crop width
    y_shift: float               # fraction of the free vertical space above the person
    shear: float
    gain: float
    tint: np.ndarray             # [3] the camera's colour cast, varied a little per image
    side_light: float            # left-right illumination slope
    texture_phase: np.ndarray    # [3] phases of the background texture waves
    texture_freq: np.ndarray     # [3, 2] cycles per crop (x, y) of the background texture waves
    clutter: np.ndarray          # [K, 5] background boxes: x0, y0, x1, y1 (fractions), colour index
    occluder: tuple[float, float, float, float] | None  # box in crop fractions
    occluder_colour: np.ndarray
    blur: float
    noise_seed: int              # seeds the sensor noise of this image


def sample_shot(rng: np.random.Generator, camera: CameraLook) -> Shot:
    """Draw one image's pose and nuisances, around its camera's settings."""
    clutter = []
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(-0.2, 0.9), rng.uniform(-0.1, 0.7)
        clutter.append((x0, y0, x0 + rng.uniform(0.1, 0.5), y0 + rng.uniform(0.1, 0.6), rng.integers(4)))
    occluder = None
    if rng.random() < camera.occlusion_p:
        if rng.random() < 0.5:  # something low in front (a bench, a car): covers the bottom
            top = rng.uniform(0.45, 0.85)
            x0 = rng.uniform(-0.3, 0.3)
            occluder = (x0, top, x0 + rng.uniform(0.7, 1.3), 1.0)
        else:  # a pole or a passer-by at one side
            width = rng.uniform(0.15, 0.45)
            x0 = 0.0 if rng.random() < 0.5 else 1.0 - width
            occluder = (x0, rng.uniform(0.0, 0.4), x0 + width, 1.0)
    return Shot(
        back_view=bool(rng.random() < camera.back_view_p),
        turn=rng.uniform(0.6, 0.75) if rng.random() < camera.side_view_p else 1.0,
        mirror=bool(rng.random() < 0.5),
        stride=rng.uniform(0.0, 0.06),
        arm_swing=rng.uniform(-0.035, 0.035),
        scale=camera.scale * rng.uniform(0.95, 1.04),
        x_shift=rng.uniform(-0.07, 0.07),
        y_shift=rng.uniform(0.2, 0.8),
        shear=camera.shear + rng.uniform(-0.03, 0.03),
        gain=camera.gain * rng.uniform(0.85, 1.15),
        tint=(camera.tint * rng.uniform(0.92, 1.08, 3)).astype(np.float32),
        side_light=rng.uniform(-0.3, 0.3),
        texture_phase=rng.uniform(0, 2 * np.pi, 3),
        texture_freq=rng.uniform(0.5, 5.0, (3, 2)),
        clutter=np.array(clutter, dtype=np.float64).reshape(-1, 5),
        occluder=occluder,
        occluder_colour=rng.uniform(0.05, 0.9, 3).astype(np.float32),
        blur=camera.blur * rng.uniform(0.8, 1.2),
        noise_seed=int(rng.integers(2**32)),
    )
