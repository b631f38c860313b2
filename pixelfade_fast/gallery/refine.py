"""``pixelfade refine IN OUT``: more CO-only steps for the images of a finished run that missed ε.

Each missed image continues from its protected PNG towards its original's features with CO-only steps (8-bit
quantised, as in the run's closing steps), each image stopping once it is below its ε. No pixel is replaced, so
no noise is drawn and the seed is not needed. A PNG is replaced (atomically) only when its loss fell; then its
manifest line is updated (the whole manifest rewritten atomically after each batch), with the steps added in
``refine_steps``. The model must be the run's (its digest, input size and mean/std are checked).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import FadeConfig
from ..data.images import load_image
from ..engine import Acceleration, Protector
from ..models.digest import state_digest
from ..reference.rng import KEY_WORDS
from .atomic import default_file_mode
from .errors import GalleryError
from .image_io import to_uint8_images, write_png_atomic
from .inputs import check_folders
from .manifest import Manifest, write_manifest
from .run import _normalisation_lists
from .run_record import read_run_record


@dataclass
class RefineReport:
    missed: int = 0
    improved: int = 0
    now_met: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"refined {self.missed} images that missed epsilon: {self.improved} improved, {self.now_met} now "
                f"meet it, {self.missed - self.now_met} still do not; {self.seconds:.1f} s")


def refine_config(run_config: dict, steps: int) -> FadeConfig:
    """The run's config as CO-only steps: one closing step for every image, then ``steps - 1`` for those still
    above ε (the finish phase), quantised."""
    return dataclasses.replace(FadeConfig(**run_config), steps=1, init_steps=0, final_steps=1,
                               finish_steps=steps - 1, quantize=True)


def refine_missed(model: nn.Module, in_dir: Path, out_dir: Path, *, steps: int, batch_size: int | None = None,
                  backend: str = "auto", acceleration: Acceleration | None = None, log=print) -> RefineReport:
    in_real, out_real = check_folders(Path(in_dir), Path(out_dir))
    record = read_run_record(out_real)
    if record is None:
        raise GalleryError(f"{out_dir} holds no run record (run.json): nothing to refine")
    if list(out_real.glob("manifest.rank*.jsonl")):
        raise GalleryError(f"{out_dir} has per-rank manifests: run `pixelfade merge {out_dir}` first")
    if steps < 1:
        raise GalleryError(f"--steps must be at least 1, got {steps}")
    mean, std = _normalisation_lists(model)
    found = {"model weights (digest)": state_digest(model), "input_size": list(model.input_size), "mean": mean,
             "std": std}
    expected = {"model weights (digest)": record.model_digest, "input_size": record.input_size, "mean": record.mean,
                "std": record.std}
    changes = [f"{key}: {expected[key]} in the run, {found[key]} now" for key in found if found[key] != expected[key]]
    if changes:
        raise GalleryError("refine needs the run's model: " + "; ".join(changes))
    manifest = Manifest(out_real / "manifest.jsonl")
    entries = {entry.path: entry for entry in manifest.read()}
    missed = sorted(path for path, entry in entries.items() if entry.status == "protected" and not entry.met_epsilon)
    report = RefineReport(missed=len(missed))
    log(f"{len(missed)} images missed epsilon in {out_dir}; up to {steps} CO-only steps each")
    if not missed:
        return report
    config = refine_config(record.config, steps)
    size = tuple(record.input_size)
    file_mode = default_file_mode()
    batch_size = batch_size or record.batch_size
    start = time.perf_counter()
    with Protector(model, config, backend=backend, acceleration=acceleration) as protector:
        for first in range(0, len(missed), batch_size):
            names = missed[first:first + batch_size]
            originals = torch.stack([load_image(in_real / n, size) for n in names]).to(protector.device)
            protected = torch.stack([load_image(out_real / entries[n].output) for n in names]).to(protector.device)
            keys = torch.zeros(len(names), KEY_WORDS, dtype=torch.int64)  # CO-only: no noise, no masks
            setup = dataclasses.replace(protector.setup(originals, keys), x=protector.normalise(protected))
            xp, losses = protector.run(setup)
            arrays = to_uint8_images(protector.to_pixels(xp))
            for name, array, loss, epsilon in zip(names, arrays, losses.tolist(), setup.epsilon.tolist()):
                old = entries[name]
                if loss >= old.final_loss:
                    continue
                write_png_atomic(array, out_real / old.output, file_mode)
                entries[name] = dataclasses.replace(old, final_loss=round(loss, 6), met_epsilon=loss < epsilon,
                                                    refine_steps=old.refine_steps + steps)
                report.improved += 1
                report.now_met += int(loss < epsilon)
            write_manifest(manifest.path, list(entries.values()))
    report.seconds = time.perf_counter() - start
    return report
