"""SynthPed's infrared-like camera: the same person and shot, rendered as heat instead of colour.

Every surface is given a temperature in [0, 1] instead of a colour; the renderer then draws the scene as usual
(shapes, pose, limb shading, the camera's gain, gamma, blur, occlusion and noise) and the three channels are
averaged, so an infrared image has R = G = B. Colour is lost, but how dark a fabric is still shows, the way dark
clothes run warmer in the sun. With Y = 0.299 R + 0.587 G + 0.114 B, the luma of the surface's colour:

| surface | temperature |
| --- | --- |
| skin | 0.95 |
| hair | 0.70 |
| clothing (upper, its pattern, lower, hat, belt, logo) | 0.50 + 0.30 (1 − Y) |
| shoes, bag (not warmed by the body) | 0.30 + 0.20 (1 − Y) |
| background, clutter, occluders | 0.10 + 0.25 (1 − Y) |
| floor | 0.20 + 0.25 (1 − Y) |

The camera's colour cast and saturation do not apply (a thermal sensor has one band); the per-image colour cast
of the shot is dropped too.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .synthped_looks import CameraLook, IdentityLook, Shot
from .synthped_render import render_crop

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SKIN_TEMPERATURE = 0.95
HAIR_TEMPERATURE = 0.70
CLOTHING = (0.50, 0.30)     # (base, span): temperature = base + span * (1 - Y)
CARRIED = (0.30, 0.20)      # shoes, bags
BACKGROUND = (0.10, 0.25)   # background gradient, clutter, occluders
FLOOR = (0.20, 0.25)


def absorbed_temperature(colour: np.ndarray, law: tuple[float, float]) -> np.ndarray:
    """base + span * (1 - luma) of colours [..., 3] (a dark surface absorbs more light and runs warmer)."""
    base, span = law
    return (base + span * (1.0 - np.asarray(colour, dtype=np.float32) @ LUMA)).astype(np.float32)


def _grey(temperature) -> np.ndarray:
    """A temperature written as a colour with three equal channels ([..., 3])."""
    return np.repeat(np.asarray(temperature, dtype=np.float32)[..., None], 3, axis=-1)


def _heat(colour, law) -> np.ndarray | None:
    return None if colour is None else _grey(absorbed_temperature(colour, law))


def thermal_look(look: IdentityLook) -> IdentityLook:
    """The look with every colour replaced by its temperature (shapes, pattern geometry and bag kind unchanged)."""
    return dataclasses.replace(
        look, upper=_heat(look.upper, CLOTHING), upper_second=_heat(look.upper_second, CLOTHING),
        lower=_heat(look.lower, CLOTHING), hat=_heat(look.hat, CLOTHING), belt=_heat(look.belt, CLOTHING),
        logo=_heat(look.logo, CLOTHING), skin=_grey(SKIN_TEMPERATURE), hair=_grey(HAIR_TEMPERATURE),
        shoes=_heat(look.shoes, CARRIED), bag=_heat(look.bag, CARRIED))


def thermal_camera(camera: CameraLook) -> CameraLook:
    """The camera's geometry, optics and sensor, with a one-band sensor and a scene of temperatures."""
    return dataclasses.replace(
        camera, bg_colours=_heat(camera.bg_colours, BACKGROUND), floor=_heat(camera.floor, FLOOR),
        clutter_colours=_heat(camera.clutter_colours, BACKGROUND), tint=np.ones(3, dtype=np.float32),
        saturation=1.0)


def thermal_shot(shot: Shot) -> Shot:
    """The shot without its colour cast, its occluder at the temperature of its colour."""
    return dataclasses.replace(shot, tint=np.ones(3, dtype=np.float32),
                               occluder_colour=_heat(shot.occluder_colour, BACKGROUND))


def render_infrared_crop(look: IdentityLook, camera: CameraLook, shot: Shot, size: tuple[int, int]) -> np.ndarray:
    """One infrared-like crop as uint8 [H, W, 3] with R = G = B (the rounded mean of the thermal rendering)."""
    rendered = render_crop(thermal_look(look), thermal_camera(camera), thermal_shot(shot), size)
    grey = (rendered.astype(np.float32).mean(axis=2) + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
