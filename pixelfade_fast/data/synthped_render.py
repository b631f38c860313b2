"""SynthPed: draws one pedestrian crop from an identity, a camera and a shot (numpy, whole-image masks)."""
from __future__ import annotations

import numpy as np

from .synthped_looks import CameraLook, IdentityLook, Shot

ANKLE_Y = 0.965   # figure units: where the legs end
SHADING = 0.35    # darkening at the edge of a limb or torso (cylinder-like shading)


def _capsule(fx, fy, x0, y0, x1, y1, r):
    """Points within r of the segment (x0,y0)-(x1,y1): mask, distance / r, position t along the segment."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((fx - x0) * dx + (fy - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    dist = np.hypot(fx - (x0 + t * dx), fy - (y0 + t * dy))
    return dist <= r, dist / r, t


def _ellipse(fx, fy, cx, cy, rx, ry):
    """Points inside the ellipse: mask and the horizontal offset / rx (for shading)."""
    ex, ey = (fx - cx) / rx, (fy - cy) / ry
    return ex * ex + ey * ey <= 1.0, ex


def _trapezoid(fx, fy, y0, y1, hw0, hw1):
    """Points of a vertical trapezoid centred on the axis, half-width hw0 at y0 to hw1 at y1."""
    t = (fy - y0) / (y1 - y0)
    rel = fx / (hw0 + (hw1 - hw0) * np.clip(t, 0.0, 1.0))
    return (t >= 0) & (t <= 1) & (np.abs(rel) <= 1), rel


def _box(x, y, x0, y0, x1, y1):
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _paint(img, mask, colour, rel=None):
    """Write `colour` ([3] or [H,W,3]) into img where mask holds, darkened towards the part's edges."""
    if np.ndim(colour) == 3:
        colour = colour[mask]
    if rel is not None:
        colour = colour * (1.0 - SHADING * np.minimum(np.square(rel[mask]), 1.0))[:, None]
    img[mask] = colour


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of [H, W, 3] (edges repeated), as weighted sums of shifted copies."""
    radius = max(1, int(3 * sigma + 0.5))
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    height, width = img.shape[:2]
    padded = np.pad(img, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    img = sum(w * padded[i:i + height] for i, w in enumerate(weights))
    padded = np.pad(img, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(w * padded[:, i:i + width] for i, w in enumerate(weights))


def _background(cam: CameraLook, shot: Shot, u, v) -> np.ndarray:
    t = v if cam.bg_vertical else u
    img = cam.bg_colours[0] * (1 - t)[..., None] + cam.bg_colours[1] * t[..., None]
    img = np.broadcast_to(img, v.shape[:1] + u.shape[1:] + (3,)).astype(np.float32)
    for x0, y0, x1, y1, colour in shot.clutter:
        _paint(img, _box(u, v, x0, y0, x1, y1), cam.clutter_colours[int(colour)])
    _paint(img, np.broadcast_to(v > cam.floor_y, img.shape[:2]), cam.floor)
    waves = sum(np.sin(np.float32(2 * np.pi * fu) * u + np.float32(2 * np.pi * fv) * v + np.float32(p))
                for (fu, fv), p in zip(shot.texture_freq, shot.texture_phase))
    return img + np.float32(cam.texture_amp / 3.0) * waves[..., None]


def _upper_colour(look: IdentityLook, fx, fy):
    """The upper garment's colour at every point: plain, or a pattern in figure units (it moves with the body)."""
    if look.pattern == "plain":
        return look.upper
    h = np.mod(fy / look.pattern_period + look.pattern_phase, 1.0)
    w = np.mod(fx / look.pattern_period + look.pattern_phase, 1.0)
    stripes = {"hstripes": h < 0.45, "vstripes": w < 0.45, "plaid": (h < 0.3) | (w < 0.3)}[look.pattern]
    return np.where(stripes[..., None], look.upper_second, look.upper)


def _paint_legs(img, look: IdentityLook, shot: Shot, fx, fy):
    hip_x = look.waist_hw * 0.5
    knee_y = look.hip_y + 0.45 * (ANKLE_Y - look.hip_y)
    ankles = []
    for side in (-1, 1):
        ankle_x = side * (hip_x + shot.stride / 2)
        ankles.append(ankle_x)
        mask, rel, _ = _capsule(fx, fy, side * hip_x, look.hip_y, ankle_x, ANKLE_Y, look.leg_r)
        if look.lower_kind == "trousers":
            colour = look.lower
        elif look.lower_kind == "shorts":
            colour = np.where((fy < knee_y)[..., None], look.lower, look.skin)
        else:
            colour = look.skin
        _paint(img, mask, colour, rel)
    for ankle_x in ankles:
        mask, rel = _ellipse(fx, fy, ankle_x + 0.006 * np.sign(ankle_x), ANKLE_Y + 0.01, look.leg_r * 1.25, 0.025)
        _paint(img, mask, look.shoes, rel)
    if look.lower_kind == "skirt":
        mask, rel = _trapezoid(fx, fy, look.hip_y - 0.01, knee_y, look.waist_hw, look.waist_hw * 1.45)
    else:  # the seat of the trousers / shorts joins the two legs
        mask, rel = _trapezoid(fx, fy, look.hip_y - 0.01, look.hip_y + 0.05, look.waist_hw, look.waist_hw * 0.75)
    _paint(img, mask, look.lower, rel)


def _paint_torso(img, look: IdentityLook, shot: Shot, fx, fy, upper):
    mask, rel = _trapezoid(fx, fy, look.shoulder_y, look.hip_y, look.shoulder_hw, look.waist_hw)
    rs = 0.03  # rounded shoulders: cut the two top corners
    corner_x = np.abs(fx) - (look.shoulder_hw - rs)
    corner_y = fy - (look.shoulder_y + rs)
    mask &= ~((corner_x > 0) & (corner_y < 0) & (np.hypot(corner_x, corner_y) > rs))
    if look.coat_extra > 0:
        coat, coat_rel = _trapezoid(fx, fy, look.hip_y - 0.005, look.hip_y + look.coat_extra,
                                    look.waist_hw, look.waist_hw * 1.2)
        rel = np.where(coat, coat_rel, rel)
        mask |= coat
    _paint(img, mask, upper, rel)
    if look.belt is not None and look.coat_extra == 0:
        _paint(img, mask & (fy > look.hip_y - 0.014) & (fy < look.hip_y + 0.002), look.belt, rel)
    if look.bag_kind == "backpack":
        if shot.back_view:
            bag_w, bag_h = look.bag_size
            _paint(img, mask & _box(fx, fy, -look.shoulder_hw * 0.75, look.shoulder_y + 0.02,
                                    look.shoulder_hw * 0.75, look.shoulder_y + 0.02 + 2.2 * bag_h), look.bag, rel)
        else:
            straps = (np.abs(np.abs(fx) - look.shoulder_hw * 0.55) < 0.009) & (fy < look.shoulder_y + 0.13)
            _paint(img, mask & straps, look.bag, rel)
    elif look.logo is not None and not shot.back_view:
        x0, y0, x1, y1 = look.logo_box
        _paint(img, mask & _box(fx, fy, x0, look.shoulder_y + y0, x1, look.shoulder_y + y1), look.logo)


def _paint_arms(img, look: IdentityLook, shot: Shot, fx, fy, upper):
    for side in (-1, 1):
        x0, y0 = side * (look.shoulder_hw - look.arm_r * 0.8), look.shoulder_y + look.arm_r
        x1, y1 = side * (look.shoulder_hw + look.arm_r * 0.3) + side * shot.arm_swing, look.hip_y + 0.01
        mask, rel, t = _capsule(fx, fy, x0, y0, x1, y1, look.arm_r)
        colour = np.where((t > 0.45)[..., None], look.skin, upper) if look.short_sleeves else upper
        _paint(img, mask, colour, rel)
        hand, hand_rel = _ellipse(fx, fy, x1, y1 + look.arm_r * 0.6, look.arm_r * 1.05, look.arm_r * 1.2)
        _paint(img, hand, look.skin, hand_rel)


def _paint_head(img, look: IdentityLook, shot: Shot, fx, fy):
    cy, rx, ry = look.head_ry, look.head_rx, look.head_ry
    hair_bottom = look.shoulder_y + look.hair_length
    if look.hair_length > 0 and not shot.back_view:  # two strands beside the face, over the shoulders
        _paint(img, _box(np.abs(fx), fy, rx * 0.55, cy, rx * 1.15, hair_bottom), look.hair)
    neck, neck_rel = _trapezoid(fx, fy, cy, look.shoulder_y + 0.01, rx * 0.45, rx * 0.5)
    _paint(img, neck, look.skin, neck_rel)
    head, head_rel = _ellipse(fx, fy, 0.0, cy, rx, ry)
    _paint(img, head, look.skin, head_rel)
    cap, cap_rel = _ellipse(fx, fy, 0.0, cy, rx * 1.08, ry * 1.06)
    hair_line = cy + 0.55 * ry if shot.back_view else cy - look.hair_fringe * ry
    _paint(img, cap & (fy < hair_line), look.hair, cap_rel)
    if look.hair_length > 0 and shot.back_view:  # covers the back of the head and the neck
        _paint(img, _box(np.abs(fx), fy, 0.0, cy, rx * 1.1, hair_bottom) | (cap & (fy < cy + ry)), look.hair)
    if look.hat is not None:
        hat, hat_rel = _ellipse(fx, fy, 0.0, cy, rx * 1.12, ry * 1.08)
        _paint(img, hat & (fy < cy - 0.3 * ry), look.hat, hat_rel)


def _paint_shoulder_bag(img, look: IdentityLook, shot: Shot, fx, fy):
    side = -look.bag_side if shot.back_view else look.bag_side
    bag_w, bag_h = look.bag_size
    inner = look.shoulder_hw * 0.85
    strap, _, _ = _capsule(fx, fy, -side * look.shoulder_hw * 0.6, look.shoulder_y,
                           side * (inner + bag_w / 2), look.hip_y - bag_h * 0.6, 0.007)
    _paint(img, strap, look.bag * 0.8)
    x0, x1 = sorted((side * inner, side * (inner + bag_w)))
    mask = _box(fx, fy, x0, look.hip_y - bag_h * 0.6, x1, look.hip_y + bag_h * 0.4)
    _paint(img, mask, look.bag, (fx - (x0 + x1) / 2) / (bag_w / 2))


def render_crop(look: IdentityLook, camera: CameraLook, shot: Shot, size: tuple[int, int]) -> np.ndarray:
    """One crop as uint8 [H, W, 3]: background, person, occluder, then the camera's light, blur and noise."""
    height, width = size
    v = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    u = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
    img = _background(camera, shot, u, v)

    # Figure coordinates of every pixel: scale, position, shear, aspect and mirror of this shot.
    top = (1.0 - shot.scale) * shot.y_shift
    fy = np.broadcast_to((v - top) / shot.scale, (height, width))
    fx = ((u - 0.5 - shot.x_shift) * width / height) / shot.scale
    fx = (fx - shot.shear * (fy - 0.5)) / (camera.aspect * shot.turn)
    fx = -fx if shot.mirror else fx

    upper = _upper_colour(look, fx, fy)
    _paint_legs(img, look, shot, fx, fy)
    _paint_torso(img, look, shot, fx, fy, upper)
    _paint_arms(img, look, shot, fx, fy, upper)
    _paint_head(img, look, shot, fx, fy)
    if look.bag_kind == "shoulder":
        _paint_shoulder_bag(img, look, shot, fx, fy)
    if shot.occluder is not None:
        x0, y0, x1, y1 = shot.occluder
        _paint(img, np.broadcast_to(_box(u, v, x0, y0, x1, y1), fy.shape), shot.occluder_colour,
               np.broadcast_to((u - (x0 + x1) / 2) / max((x1 - x0) / 2, 1e-3), fy.shape))

    grey = img.mean(axis=2, keepdims=True)
    img = grey + np.float32(camera.saturation) * (img - grey)
    light = shot.gain * (1.0 + shot.side_light * (u - 0.5))
    img = np.clip(img * shot.tint * light[..., None], 0.0, 1.0) ** np.float32(camera.gamma)
    sigma = shot.blur * height / 128.0
    if sigma > 0.25:
        img = _gaussian_blur(img, sigma)
    img = img + np.float32(camera.noise) * np.random.default_rng(shot.noise_seed).standard_normal(img.shape, np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
