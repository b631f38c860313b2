"""``pixelfade refine IN OUT``: more CO-only steps for the images of a finished run that missed ε.

Each missed image continues from its protected image towards its original's features with CO-only steps (8-bit
quantised, as in the run's closing steps), each image stopping once it is below its ε. No pixel is replaced, so
no noise is drawn and the seed is not needed. A JPEG or WebP run's image continues from its decoded file, each
step descending the real codec's estimate measured there (the run's fallback rounds, engine/stored.py, at their
β), and is judged by its file re-encoded at the quality it was stored at. An output
is replaced (atomically) only when its loss fell; then its manifest line is updated (the whole manifest rewritten
atomically after each batch), with the steps added in ``refine_steps``. The model must be the run's (its digest,
input size and mean/std are checked), and so must everything else the bits depend on (backend, speed options,
device, torch version, CPU threads, the codec libraries). The originals are checked against the digests the run
recorded, and the outputs to continue against theirs, before anything is written.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import _backend
from ..config import FadeConfig
from ..data.images import load_image
from ..engine import Acceleration, StoringProtector
from ..engine.stored import FALLBACK_BETA, co_only_config
from ..feature_model import model_device
from ..input_space import InputSpace
from ..machine import device_name, torch_threads, usable_cpus
from ..models.digest import state_digest
from ..progress import ProgressBar
from ..reference.rng import KEY_WORDS
from ..storage_format import to_arrays
from ..atomic_file import default_file_mode
from .content import file_digests
from .errors import GalleryError
from .image_io import write_image_atomic
from .inputs import check_folders
from .manifest import Manifest, ManifestEntry, write_manifest
from .model_check import check_model
from .outputs import damaged_outputs
from .run_record import RunRecord, check_same_run, read_run_record, recorded_storage
from .wording import named, plural


@dataclass
class RefineReport:
    missed: int = 0
    improved: int = 0
    now_met: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"refined {plural(self.missed, 'image')} that missed epsilon: {self.improved} improved, {self.now_met} now "
                f"meet it, {self.missed - self.now_met} still do not; {self.seconds:.1f} s")


def refine_config(run_config: dict, steps: int, lossy: bool = False) -> FadeConfig:
    """The run's config as CO-only steps: one closing step for every image, then ``steps - 1`` for those still
    above ε (the finish phase), quantised; for a lossy format at the real-codec fallback's β (engine/stored.py:
    the run's β flips too many of the codec's roundings)."""
    config = FadeConfig(**run_config)
    if lossy:
        config = dataclasses.replace(config, beta=FALLBACK_BETA)
    return co_only_config(config, steps)


def refine_missed(model: nn.Module, in_dir: Path, out_dir: Path, *, steps: int, batch_size: int | None = None,
                  backend: str | None = None, acceleration: Acceleration | None = None, threads: int | None = None,
                  progress: bool | None = None, log=print) -> RefineReport:
    """Refine the missed images of the run in ``out_dir`` (see the module doc). ``backend`` and ``threads``
    default to the run's; everything the run's bits depend on must be the run's, or it is refused by name."""
    in_real, out_real = check_folders(Path(in_dir), Path(out_dir))
    record = read_run_record(out_real)
    if record is None:
        raise GalleryError(f"{out_dir} holds no run record (run.json): nothing to refine")
    if list(out_real.glob("manifest.rank*.jsonl")):
        raise GalleryError(f"{out_dir} has per-rank manifests: run `pixelfade merge {out_dir}` first")
    if steps < 1:
        raise GalleryError(f"--steps must be at least 1, got {steps}")
    if threads is not None and threads < 1:
        raise GalleryError(f"--threads must be at least 1, got {threads}")
    acceleration = (acceleration or Acceleration()).given_or(record.acceleration)  # the run's choice (maybe tuned)
    _check_same_setup(model, record, backend, acceleration, threads)
    size = tuple(record.input_size)
    check_model(model, size, record.model_id)
    manifest = Manifest(out_real / "manifest.jsonl")
    entries = {entry.path: entry for entry in manifest.read()}
    missed = sorted(path for path, entry in entries.items() if entry.status == "protected" and not entry.met_epsilon)
    _check_content(in_real, out_real, [entries[name] for name in missed])
    report = RefineReport(missed=len(missed))
    log(f"{plural(len(missed), 'image')} missed epsilon in {out_dir}; up to {steps} CO-only steps each")
    if not missed:
        return report
    config = refine_config(record.config, steps, not recorded_storage(record).lossless)
    file_mode = default_file_mode()
    batch_size = batch_size or record.batch_size
    show = progress if progress is not None else sys.stderr.isatty()
    bar = ProgressBar(len(missed), "refine") if show else None
    start = time.perf_counter()
    by_quality: dict[int | None, list[str]] = {}  # a JPEG / WebP file is refined at the quality it was stored at
    for name in missed:
        by_quality.setdefault(entries[name].quality, []).append(name)
    done = 0
    try:
        with torch_threads(threads or record.cpu_threads or usable_cpus()):
            for quality, group in by_quality.items():
                storage = recorded_storage(record).at_quality(quality)
                with StoringProtector(model, config, storage, backend=backend or record.backend,
                                      acceleration=acceleration, from_files=True) as protector:
                    for first in range(0, len(group), batch_size):
                        names = group[first:first + batch_size]
                        _refine_batch(protector, in_real, out_real, names, entries, size, steps, file_mode, report)
                        write_manifest(manifest.path, list(entries.values()))
                        done += len(names)
                        if bar is not None:
                            bar(done)
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _check_same_setup(model: nn.Module, record: RunRecord, backend: str | None, acceleration: Acceleration,
                      threads: int | None) -> None:
    """Refuse a model or a setting the run's bits did not come from, naming each (and the run's model spec)."""
    device = model_device(model, torch.device("cpu"))
    try:
        resolved = _backend.resolve(backend or record.backend, device)
    except (RuntimeError, ValueError) as error:
        raise GalleryError(str(error)) from None
    space = InputSpace.of(model).to_json()
    # the encoder settings of now against the run's; its fallback bounds stay as recorded (refine takes none)
    now = dataclasses.replace(record, model_digest=state_digest(model), input_size=list(model.input_size),
                              mean=space["mean"], std=space["std"], backend=resolved, device=device.type,
                              device_name=device_name(device), torch_version=torch.__version__,
                              acceleration=acceleration.resolved(device).to_dict(),
                              cpu_threads=threads or record.cpu_threads or usable_cpus(),
                              storage=record.storage and record.storage | recorded_storage(record).settings())
    model_hint = f" (--model {record.model_spec})" if record.model_spec else ""
    check_same_run(record, now, "refine needs the run's model and settings",
                   f"Refine with the run's model{model_hint} and settings")


def _check_content(in_dir: Path, out_dir: Path, entries: list[ManifestEntry]) -> None:
    """Every original is under IN with the bytes the run protected; every PNG to continue is as written."""
    absent = [e.path for e in entries if not (in_dir / e.path).is_file()]
    if absent:
        raise GalleryError(f"{plural(len(absent), 'original')} of the run {'is' if len(absent) == 1 else 'are'} "
                           f"not under {in_dir}: {named(absent)}; pass the run's input folder as IN")
    known = [e for e in entries if e.input_digest is not None]
    digests = file_digests([in_dir / e.path for e in known])
    changed = [e.path for e, digest in zip(known, digests) if digest != e.input_digest]
    if changed:
        raise GalleryError(f"{plural(len(changed), 'original')} under {in_dir} {'is' if len(changed) == 1 else 'are'}"
                           f" not the file the run protected (other bytes): {named(changed)}; refine would pull "
                           f"the protected images towards other images' features. Pass the run's input folder")
    damaged = damaged_outputs(out_dir, entries)
    if damaged:
        raise GalleryError(f"{plural(len(damaged), 'protected image')} to refine "
                           f"{'is' if len(damaged) == 1 else 'are'} missing or damaged: "
                           f"{named([f'{name} ({why})' for name, why in damaged])}; run `pixelfade protect` with "
                           f"--resume (same settings and seed file) to redo them first")


def _refine_batch(protector: StoringProtector, in_dir: Path, out_dir: Path, names: list[str],
                  entries: dict[str, ManifestEntry], size: tuple[int, int], steps: int, file_mode: int,
                  report: RefineReport) -> None:
    originals = torch.stack([load_image(in_dir / n, size) for n in names]).to(protector.device)
    protected = torch.stack([load_image(out_dir / entries[n].output) for n in names]).to(protector.device)
    keys = torch.zeros(len(names), KEY_WORDS, dtype=torch.int64)  # CO-only: no noise, no masks
    result = protector.protect_batch(originals, keys, start=protected)  # targets: the originals' features
    files = result.files if result.files is not None else to_arrays(result.pixels)  # losses: the decoded files'
    for name, file, loss, epsilon in zip(names, files, result.final_loss.tolist(), result.epsilon.tolist()):
        old = entries[name]
        if loss >= old.final_loss:
            continue
        written = write_image_atomic(file, out_dir / old.output, file_mode, protector.storage)
        entries[name] = dataclasses.replace(old, final_loss=round(loss, 6), met_epsilon=loss < epsilon,
                                            refine_steps=old.refine_steps + steps, output_digest=written.digest,
                                            output_size=written.size)
        report.improved += 1
        report.now_met += int(loss < epsilon)
