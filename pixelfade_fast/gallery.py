"""Gallery protection: a folder of images in, a folder of protected PNGs and a manifest out.

Each output is written to a temporary file and renamed into place, then its manifest line is appended and
flushed, so an interrupted run loses at most the batch in flight and ``resume`` picks up where it stopped.
Under ``torchrun`` each rank protects the images whose uid falls in its shard and writes its own manifest;
``merge_manifests`` joins them. The seed is never written anywhere.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from .config import FadeConfig
from .data.images import load_image
from .engine import protect
from .progress import ProgressBar

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
MANIFEST = "manifest.jsonl"


def image_uid(relative_path: str) -> int:
    """A stable 63-bit uid from the image's path relative to the input folder (same on every machine)."""
    digest = hashlib.sha256(relative_path.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def find_images(root: Path) -> list[str]:
    """Relative paths (POSIX style, sorted) of every jpg/png/bmp under ``root``."""
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {root} does not exist or is not a folder")
    found = [p.relative_to(root).as_posix() for p in root.rglob("*")
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def output_path(out_dir: Path, relative_path: str) -> Path:
    """OUT/<relative path>.png (the input's suffix replaced)."""
    return out_dir / Path(relative_path).with_suffix(".png")


def write_png_atomic(pixels: torch.Tensor, path: Path) -> None:
    """Writes [3, H, W] pixels in [0, 1] as an 8-bit PNG through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (pixels.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            Image.fromarray(np.ascontiguousarray(array)).save(stream, format="PNG")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_manifest(path: Path) -> list[dict]:
    """Manifest lines; a last line cut short by a crash is ignored."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def merge_manifests(out_dir: Path) -> Path:
    """Joins OUT/manifest.rank*.jsonl (and an existing manifest.jsonl) into OUT/manifest.jsonl, one line per path."""
    parts = sorted(out_dir.glob("manifest.rank*.jsonl"))
    merged: dict[str, dict] = {e["path"]: e for e in read_manifest(out_dir / MANIFEST)}
    for part in parts:
        for entry in read_manifest(part):
            merged[entry["path"]] = entry
    target = out_dir / MANIFEST
    temp = target.with_suffix(".jsonl.tmp")
    temp.write_text("".join(json.dumps(merged[k], sort_keys=True) + "\n" for k in sorted(merged)))
    os.replace(temp, target)
    return target


@dataclass
class Shard:
    """This process's share of the images under torchrun (RANK / WORLD_SIZE), or everything."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Shard:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    def owns(self, uid: int) -> bool:
        return uid % self.world_size == self.rank

    @property
    def manifest_name(self) -> str:
        return MANIFEST if self.world_size == 1 else f"manifest.rank{self.rank}.jsonl"


@dataclass
class GalleryReport:
    protected: int = 0
    skipped_done: int = 0
    met_epsilon: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def protect_folder(model, in_dir: Path, out_dir: Path, config: FadeConfig, *, seed: int, model_id: str,
                   batch_size: int = 32, backend: str = "auto", resume: bool = False, shard: Shard | None = None,
                   progress: bool | None = None, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
                   ) -> GalleryReport:
    """Protects every image under ``in_dir`` into ``out_dir``; returns counts and the inputs that failed."""
    shard = shard or Shard()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if in_dir.resolve() == out_dir.resolve():
        raise ValueError("the output folder must differ from the input folder (inputs would be overwritten)")
    size = tuple(getattr(model, "input_size", ()) or ())
    if len(size) != 2:
        raise ValueError("the model must carry its input size (a pixelfade_fast.models.ReIDModel)")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / shard.manifest_name
    existing = read_manifest(manifest_path)
    if existing and not resume:
        raise FileExistsError(f"{manifest_path} already lists {len(existing)} images; pass --resume to continue "
                              f"that run, or choose an empty output folder")
    done = {e["path"] for e in existing if output_path(out_dir, e["path"]).exists()}
    todo = [p for p in find_images(in_dir) if shard.owns(image_uid(p))]
    report = GalleryReport(skipped_done=sum(p in done for p in todo))
    todo = [p for p in todo if p not in done]
    log(f"{len(todo)} images to protect ({report.skipped_done} already done) into {out_dir}")
    bar = ProgressBar(len(todo), "protect") if (progress if progress is not None else sys.stderr.isatty()) else None
    device = next(iter(model.parameters())).device
    with open(manifest_path, "a") as manifest:
        handled = 0
        for names in _batches(todo, batch_size):
            loaded, kept = [], []
            for name in names:
                try:
                    loaded.append(load_image(in_dir / name, size))
                    kept.append(name)
                except Exception as error:  # unreadable input: report it, go on with the rest
                    report.failed.append((name, f"{type(error).__name__}: {error}"))
                    log(f"skipped {name}: {type(error).__name__}: {error}")
            if kept:
                result = protect(model, torch.stack(loaded).to(device), config, uids=[image_uid(n) for n in kept],
                                 seed=seed, backend=backend, batch_size=len(kept), progress=False)
                losses = result.final_loss.cpu().tolist()
                for index, name in enumerate(kept):
                    write_png_atomic(result.images[index], output_path(out_dir, name))
                    entry = {"path": name, "uid": image_uid(name), "final_loss": round(losses[index], 6),
                             "met_epsilon": losses[index] < config.epsilon, "config_hash": config.config_hash(),
                             "model_id": model_id}
                    manifest.write(json.dumps(entry, sort_keys=True) + "\n")
                    report.protected += 1
                    report.met_epsilon += int(entry["met_epsilon"])
                manifest.flush()
                os.fsync(manifest.fileno())
            handled += len(names)
            if bar:
                bar(handled)
    return report
