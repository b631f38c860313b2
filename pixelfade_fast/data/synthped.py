"""SynthPed: a seeded procedural pedestrian Re-ID dataset written in Market-1501 layout.

Every random draw comes from numpy's default_rng seeded by (seed, what, which...), so a crop depends only
on the seed and its own keys: the same seed gives the same bytes (same numpy / scipy / Pillow), and an
identity looks the same whatever the number of other identities generated.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .captions import describe, write_captions
from .market1501 import read_market1501
from .records import DatasetNotFoundError, ReIDSplit
from .synthped_infrared import render_infrared_crop
from .synthped_looks import sample_camera, sample_identity, sample_shot
from .synthped_render import render_crop

# Namespaces of the seed sequences, so identity, camera, shot and caption draws never share a stream.
_IDENTITY, _CAMERA, _SHOT, _DISTRACTOR, _CAPTION = 0, 1, 2, 3, 4
MODALITIES_FILE = "modalities.json"
_ROLE_GALLERY, _ROLE_QUERY = 0, 1


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _crop_keys(seed: int, pid: int, camid: int, index: int, query: bool):
    """(look, shot keys) of crop `index` of identity `pid` (>= 1) seen by camera `camid`."""
    if pid < 1:
        raise ValueError(f"pid must be >= 1 (0 is reserved for distractors, -1 for junk), got {pid}")
    return sample_identity(_rng(seed, _IDENTITY, pid)), (pid, camid, index, _ROLE_QUERY if query else _ROLE_GALLERY)


def render_synthped_crop(seed: int, pid: int, camid: int, index: int, size: tuple[int, int] = (256, 128),
                         query: bool = False, infrared: bool = False) -> np.ndarray:
    """The uint8 [H, W, 3] crop number `index` of identity `pid` (>= 1) seen by camera `camid` (0-based).

    Query and gallery/train crops with the same index are different shots (`query` picks the stream).
    `infrared` renders the shot with the infrared-like camera (synthped_infrared.py: R = G = B).
    These are exactly the pixels generate_synthped writes for that crop.
    """
    look, keys = _crop_keys(seed, pid, camid, index, query)
    return _render(seed, look, camid, keys, size, infrared)


def synthped_captions(seed: int, pid: int, camid: int, index: int, count: int = 2, query: bool = False) -> list[str]:
    """The `count` captions generate_synthped writes for that crop (data/captions.py)."""
    look, keys = _crop_keys(seed, pid, camid, index, query)
    return _describe(seed, look, camid, keys, count)


def _scene(seed: int, camid: int, keys: tuple[int, ...]):
    camera = sample_camera(_rng(seed, _CAMERA, camid))
    return camera, sample_shot(_rng(seed, _SHOT, *keys), camera)


def _render(seed: int, look, camid: int, keys: tuple[int, ...], size: tuple[int, int],
            infrared: bool = False) -> np.ndarray:
    camera, shot = _scene(seed, camid, keys)
    return (render_infrared_crop if infrared else render_crop)(look, camera, shot, size)


def _describe(seed: int, look, camid: int, keys: tuple[int, ...], count: int) -> list[str]:
    return describe(look, _scene(seed, camid, keys)[1], _rng(seed, _CAPTION, *keys), count)


def _distractor_camera(seed: int, number: int, num_cams: int) -> int:
    return int(_rng(seed, _DISTRACTOR, number, 0).integers(num_cams))


def _distractor_look(seed: int, number: int, camid: int):
    """The look and shot keys of a person who appears once, in the gallery only (pid 0)."""
    return sample_identity(_rng(seed, _DISTRACTOR, number, 1)), (0, camid, number, _DISTRACTOR)


def _check_args(num_ids_train, num_ids_test, images_per_id_per_cam, num_cams, size, queries_per_id_per_cam,
                num_distractors, image_format, infrared_cams=0, captions_per_image=0):
    for name, value, low in (("num_ids_train", num_ids_train, 1), ("num_ids_test", num_ids_test, 1),
                             ("images_per_id_per_cam", images_per_id_per_cam, 1), ("num_cams", num_cams, 2),
                             ("queries_per_id_per_cam", queries_per_id_per_cam, 1),
                             ("num_distractors", num_distractors, 0), ("infrared_cams", infrared_cams, 0),
                             ("captions_per_image", captions_per_image, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if len(size) != 2 or not all(isinstance(s, int) and s >= 16 for s in size):
        raise ValueError(f"size must be (height, width) with ints >= 16, e.g. (256, 128), got {size!r}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' (lossless) or 'jpg', got {image_format!r}")


def generate_synthped(out_dir: str | Path, num_ids_train: int = 100, num_ids_test: int = 100,
                      images_per_id_per_cam: int = 2, num_cams: int = 4, size: tuple[int, int] = (256, 128),
                      seed: int = 0, queries_per_id_per_cam: int = 1, num_distractors: int = 0,
                      image_format: str = "png", num_workers: int = 0, infrared_cams: int = 0,
                      captions_per_image: int = 0) -> ReIDSplit:
    """Write a SynthPed dataset in Market-1501 layout under `out_dir` and return its records.

    Train identities are pids 1..num_ids_train, test identities the next num_ids_test pids; every identity
    is seen by every camera. bounding_box_train: images_per_id_per_cam crops per train identity and camera;
    bounding_box_test: as many per test identity and camera, plus `num_distractors` crops of other people
    (pid 0, one random camera each); query: queries_per_id_per_cam further crops per test identity and camera.
    Names follow Market-1501: <pid:04d>_c<cam>s1_<frame:06d>_00.<ext> (cameras c1.. ; query frames follow
    the gallery frames). `out_dir` must not already hold images in those folders. `num_workers` > 0 renders
    and encodes in threads; the bytes written do not depend on it.
    `infrared_cams` adds that many infrared-like cameras (camera ids after the `num_cams` visible ones, seen like
    any other camera; out_dir/modalities.json lists them). `captions_per_image` > 0 writes that many captions of
    every image into a captions.jsonl beside the images of each folder (data/captions.py).
    """
    _check_args(num_ids_train, num_ids_test, images_per_id_per_cam, num_cams, size, queries_per_id_per_cam,
                num_distractors, image_format, infrared_cams, captions_per_image)
    visible_cams = num_cams
    num_cams += infrared_cams
    out_dir = Path(out_dir)
    folders = {name: out_dir / name for name in ("bounding_box_train", "query", "bounding_box_test")}
    for folder in folders.values():
        if folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} already holds files: give generate_synthped an empty or new out_dir")
        folder.mkdir(parents=True, exist_ok=True)

    def job(folder: str, pid: int, camid: int, frame: int, look, keys):
        path = folders[folder] / f"{pid:04d}_c{camid + 1}s1_{frame:06d}_00.{image_format}"
        return path, pid, camid, look, keys

    def crop_job(folder: str, pid: int, camid: int, frame: int, index: int, query: bool):
        return job(folder, pid, camid, frame, *_crop_keys(seed, pid, camid, index, query))

    def distractor_job(number: int):
        camid = _distractor_camera(seed, number, num_cams)
        return job("bounding_box_test", 0, camid, number, *_distractor_look(seed, number, camid))

    jobs = []
    test_pids = range(num_ids_train + 1, num_ids_train + num_ids_test + 1)
    for pid in range(1, num_ids_train + num_ids_test + 1):
        folder = "bounding_box_train" if pid <= num_ids_train else "bounding_box_test"
        for camid in range(num_cams):
            jobs += [crop_job(folder, pid, camid, k, k, False) for k in range(images_per_id_per_cam)]
            if pid in test_pids:
                jobs += [crop_job("query", pid, camid, images_per_id_per_cam + k, k, True)
                         for k in range(queries_per_id_per_cam)]
    jobs += [distractor_job(number) for number in range(num_distractors)]

    def write(job):
        path, _, camid, look, keys = job
        pixels = _render(seed, look, camid, keys, size, infrared=camid >= visible_cams)
        Image.fromarray(pixels).save(path, **({"quality": 95} if image_format == "jpg" else {}))

    if num_workers > 0:
        with ThreadPoolExecutor(num_workers) as pool:
            list(pool.map(write, jobs))
    else:
        for job in jobs:
            write(job)
    if captions_per_image > 0:
        for folder in folders.values():
            write_captions(folder, [(path.name, pid, camid, _describe(seed, look, camid, keys, captions_per_image))
                                    for path, pid, camid, look, keys in jobs if path.parent == folder])
    if infrared_cams > 0:
        (out_dir / MODALITIES_FILE).write_text(json.dumps(
            {"visible_camids": list(range(visible_cams)), "infrared_camids": list(range(visible_cams, num_cams))}))
    return read_market1501(out_dir)


def read_modalities(root: str | Path) -> tuple[set[int], set[int]]:
    """(visible, infrared) 0-based camera ids of a SynthPed dataset made with infrared cameras."""
    path = Path(root) / MODALITIES_FILE
    if not path.is_file():
        raise DatasetNotFoundError(f"no {MODALITIES_FILE} in {str(root)!r}: generate the data with infrared cameras "
                                   f"(generate_synthped(..., infrared_cams=2))")
    entry = json.loads(path.read_text())
    return set(entry["visible_camids"]), set(entry["infrared_camids"])
