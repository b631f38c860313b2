"""``protect_folder``: a folder of images in, protected PNGs, a manifest and a run record out.

A run is first checked whole (folders, inputs, output names, seed file, backend, the run already in OUT) and
only then touches the disk, so a run that cannot start leaves nothing behind. It then protects the batches of
the plan it owns, reading ahead and writing behind in background threads.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import __version__
from .. import _backend
from ..config import FadeConfig
from ..engine import Acceleration, Protector
from ..models.digest import state_digest
from ..progress import ProgressBar
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed
from .atomic import default_file_mode
from .errors import GalleryError
from .image_io import ImageReader, LoadedImage, PngWriter, to_uint8_images
from .inputs import InputListing, check_folders, check_output_names, find_inputs, image_uid
from .manifest import Manifest, ManifestEntry
from .plan import Batch, Shard, batch_plan, inputs_digest
from .run_record import RUN_RECORD, RunRecord, check_resume, read_run_record, write_run_record
from .seed_file import SeedFile, check_new_run_secret, create_seed_file, peek_seed_file, read_seed_file

PREFETCH_BATCHES = 2
Log = Callable[[str], None]


@dataclass(frozen=True)
class GallerySettings:
    """How a gallery run protects (everything but the model, the folders and the secret)."""

    config: FadeConfig = field(default_factory=lambda: FadeConfig(quantize=True))
    batch_size: int = 32
    backend: str = "auto"
    acceleration: Acceleration = field(default_factory=Acceleration)
    names: str = "stem"
    resume: bool = False
    io_workers: int = 2
    progress: bool | None = None  # None: a bar when stderr is a terminal


@dataclass
class GalleryReport:
    protected: int = 0
    met_epsilon: int = 0
    already_done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # inputs left out by the listing
    missed_epsilon: list[str] = field(default_factory=list)  # protected this run, final loss >= ε
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.protected / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (f"protected {self.protected} images ({self.met_epsilon} met epsilon, {len(self.missed_epsilon)} "
                f"did not), {len(self.failed)} failed, {self.already_done} already done, {len(self.skipped)} "
                f"skipped; {self.seconds:.1f} s, {self.images_per_s:.2f} images/s")


def all_manifests(out_dir: Path) -> list[Manifest]:
    """The manifest of a single-process run and every torchrun rank's, in name order."""
    paths = [out_dir / "manifest.jsonl"] + sorted(out_dir.glob("manifest.rank*.jsonl"))
    return [Manifest(p) for p in paths if p.exists()]


@dataclass
class _Plan:
    """A checked run: what it will do, before anything is written."""

    in_dir: Path
    out_dir: Path
    listing: InputListing
    outputs: dict[str, str]
    batches: list[Batch]
    record: RunRecord
    seed: SeedFile | None  # None: create the seed file (path below) / no seed file at all
    seed_path: Path | None
    done: set[str]


def _model_size(model: nn.Module) -> tuple[int, int]:
    size = tuple(getattr(model, "input_size", ()) or ())
    if len(size) != 2:
        raise GalleryError("the model must carry its input size (input_size = (H, W)), e.g. a "
                           "pixelfade_fast.models.ReIDModel or FeatureExtractor")
    return int(size[0]), int(size[1])


def _normalisation_lists(model: nn.Module) -> tuple[list, list]:
    from ..engine import normalisation

    mean, std = normalisation(model, 3, torch.device("cpu"))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def _check(model: nn.Module, model_id: str, in_dir: Path, out_dir: Path, settings: GallerySettings,
           seed_file: Path | None, shard: Shard, allow_weak_seed: bool) -> _Plan:
    in_real, out_real = check_folders(Path(in_dir), Path(out_dir))
    if settings.batch_size < 1:
        raise GalleryError(f"--batch-size must be at least 1, got {settings.batch_size}")
    if not settings.config.quantize:
        raise GalleryError("gallery runs quantise (the PNG must be the image whose loss was measured): "
                           "use FadeConfig(quantize=True)")
    size = _model_size(model)
    listing = find_inputs(in_real)
    if not listing.images:
        raise GalleryError(f"no images found under {in_dir} (read: jpg, jpeg, png, bmp, webp, tif, tiff)")
    outputs = check_output_names(listing.images, settings.names)
    device = next(iter(model.parameters()), torch.zeros(())).device
    try:
        backend = _backend.resolve(settings.backend, device)
    except (RuntimeError, ValueError) as error:
        raise GalleryError(str(error)) from None
    existing = read_run_record(out_real) if out_real.exists() else None
    if settings.resume:
        if existing is None:
            raise GalleryError(f"nothing to resume: {out_dir} holds no run record (run.json); start the run "
                               f"without --resume")
        if existing.seed_id is None:
            raise GalleryError("this output folder's run had no --seed-file, so its secret is gone and it cannot be "
                               "continued; protect into a new output folder (with --seed-file to make it resumable)")
        if seed_file is None:
            raise GalleryError("--resume needs the run's seed file: pass --seed-file with the file the run started "
                               "with")
        if not Path(seed_file).exists():
            raise GalleryError(f"seed file {seed_file} not found; --resume needs the seed file the run started with")
    seed = peek_seed_file(Path(seed_file)) if seed_file is not None and Path(seed_file).exists() else None
    if shard.world_size > 1 and (seed is None or not seed.run_id):
        raise GalleryError("under torchrun every rank needs the same secret and run id: create the seed file first "
                           f"with `pixelfade seed {seed_file or 'SECRET'}` and pass it as --seed-file")
    if settings.resume and not seed.run_id:
        raise GalleryError(f"seed file {seed_file} has no id line, so it is not the file this run started with "
                           f"(a run gives its seed file an id when it starts)")
    if seed is not None and not settings.resume:
        check_new_run_secret(seed, allow_weak_seed)
    mean, std = _normalisation_lists(model)
    record = RunRecord(version=__version__, config=settings.config.to_dict(),
                       config_hash=settings.config.config_hash(), model_id=model_id,
                       model_digest=state_digest(model), input_size=list(size), mean=mean, std=std,
                       batch_size=settings.batch_size, backend=backend, device=device.type,
                       acceleration=settings.acceleration.resolved(device).to_dict(), names=settings.names,
                       inputs=len(listing.images), inputs_digest=inputs_digest(listing.images),
                       seed_id=(seed.run_id or None) if seed is not None else None,
                       rng_contract=seed.contract if seed is not None else DEFAULT_CONTRACT)
    done: set[str] = set()
    if settings.resume:
        check_resume(existing, record)
        for manifest in all_manifests(out_real):
            done |= {entry.path for entry in manifest.read()}
    elif out_real.exists() and any(not _another_rank_starting(p, shard) for p in out_real.iterdir()):
        # Another torchrun rank of this same run may have started first: the same record, and nothing listed in
        # this rank's manifest (a single process must find every manifest empty).
        mine = [Manifest(out_real / shard.manifest_name)] if shard.world_size > 1 else all_manifests(out_real)
        if existing is None and shard.world_size > 1:
            existing = read_run_record(out_real)  # another rank may have renamed its record into place meanwhile
        listed = sum(len(m.read()) for m in mine)
        if existing is None or listed or existing.to_json() != record.to_json():
            what = (f"a pixelfade run ({sum(len(m.read()) for m in all_manifests(out_real))} images listed)"
                    if existing is not None else "other files")
            raise GalleryError(f"output folder {out_dir} already holds {what}; pass --resume to continue a run, "
                               f"or choose an empty output folder")
    return _Plan(in_real, out_real, listing, outputs, batch_plan(listing.images, settings.batch_size), record,
                 seed, Path(seed_file) if seed_file is not None else None, done)


def _another_rank_starting(path: Path, shard: Shard) -> bool:
    """Under torchrun, the temporary file of a run record another rank is writing at this moment: not a sign of
    another run (that rank's record, once renamed into place, is compared like any other)."""
    return shard.world_size > 1 and path.name.startswith(f".{RUN_RECORD}.") and path.name.endswith(".tmp")


def _start(plan: _Plan, log: Log) -> int:
    """Create or complete the seed file, then OUT and its run record. Returns the seed."""
    if plan.seed_path is None:
        seed = random_seed(plan.record.rng_contract)
        log("no --seed-file: the secret is drawn now and kept nowhere, so this run cannot be resumed")
    elif plan.seed is None:
        created = create_seed_file(plan.seed_path)
        log(f"created the seed file {plan.seed_path} (mode 0600): keep it private and keep it; --resume needs it")
        plan.record = dataclasses.replace(plan.record, seed_id=created.run_id)
        seed = created.seed
    else:
        completed = read_seed_file(plan.seed_path)  # adds an id line if the file has none
        if completed.run_id != plan.seed.run_id:
            log(f"added a run id to the seed file {plan.seed_path}")
            plan.record = dataclasses.replace(plan.record, seed_id=completed.run_id)
        seed = completed.seed
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(plan.out_dir, plan.record)
    return seed


def protect_folder(model: nn.Module, in_dir: Path, out_dir: Path, settings: GallerySettings, *,
                   model_id: str, seed_file: Path | None = None, shard: Shard | None = None,
                   log: Log = print, allow_weak_seed: bool = False) -> GalleryReport:
    """Protect every image under ``in_dir`` into ``out_dir`` (see the module and README for the guarantees).

    ``allow_weak_seed``: start a new run on a seed file holding a seed below 2^32 or a 64-bit secret of the
    format before RNG contract 2 (which then runs under contract 1); for tests only (see seed_file.py).
    """
    shard = shard or Shard()
    plan = _check(model, model_id, in_dir, out_dir, settings, seed_file, shard, allow_weak_seed)
    seed = _start(plan, log)
    report = GalleryReport(skipped=list(plan.listing.skipped))
    mine = [b for b in plan.batches if shard.owns(b)]
    todo = [b for b in mine if not all(name in plan.done for name in b.images)]
    report.already_done = sum(name in plan.done for b in mine for name in b.images)
    total = sum(len(b.images) for b in todo)
    for name, reason in plan.listing.skipped:
        log(f"skipped {name}: {reason}")
    log(f"{total} images to protect in {len(todo)} batches of up to {settings.batch_size} "
        f"({report.already_done} already done) into {out_dir}")
    manifest = Manifest(plan.out_dir / shard.manifest_name)
    if manifest.repair():
        log(f"{manifest.path}: dropped a last line cut short by an earlier crash (its image is redone)")
    _protect_batches(model, plan, todo, seed, settings, manifest, report, total, log)
    return report


def _protect_batches(model: nn.Module, plan: _Plan, todo: list[Batch], seed: int, settings: GallerySettings,
                     manifest: Manifest, report: GalleryReport, total: int, log: Log) -> None:
    config = settings.config
    record = plan.record
    file_mode = default_file_mode()
    show = settings.progress if settings.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(total, "protect") if show and total else None
    start = time.perf_counter()

    def written(entry: ManifestEntry) -> None:  # runs on a writer thread, serialised by the writer's lock
        if entry.path not in plan.done:
            manifest.append([entry])
            plan.done.add(entry.path)

    reader = ImageReader(plan.in_dir, tuple(record.input_size), settings.io_workers)
    writer = PngWriter(plan.out_dir, settings.io_workers, file_mode, written)
    finished = 0.0
    try:
        with Protector(model, config, backend=settings.backend, acceleration=settings.acceleration) as protector:
            for position, batch in enumerate(todo):
                for ahead in todo[position + 1:position + 1 + PREFETCH_BATCHES]:
                    reader.prefetch(ahead.index, ahead.images)
                loaded = reader.take(batch.index, batch.images)
                finished = _run_batch(protector, batch, loaded, seed, plan, record, writer, report, bar, finished,
                                      len(batch.images))
                writer.raise_errors()
        writer.raise_errors(wait=True)
    finally:
        reader.close()
        writer.close()  # a batch already protected is written out even when the run is interrupted
        if bar is not None:
            bar.close()
        report.seconds = time.perf_counter() - start


def _run_batch(protector: Protector, batch: Batch, loaded: list[LoadedImage], seed: int, plan: _Plan,
               record: RunRecord, writer: PngWriter, report: GalleryReport, bar, finished: float,
               size: int) -> float:
    good = [item for item in loaded if item.pixels is not None]
    for item in loaded:
        if item.pixels is None:
            report.failed.append((item.name, item.error))
            writer.record(ManifestEntry(item.name, None, image_uid(item.name), batch.index, "failed", None, None,
                                        item.error, record.config_hash, record.model_id))
    if good:
        pixels = torch.stack([item.pixels for item in good]).to(protector.device)
        keys = derive_keys(seed, [image_uid(item.name) for item in good], record.rng_contract)

        def step_progress(done: int, steps: int) -> None:
            if bar is not None:
                bar(finished + len(good) * done / steps)

        result = protector.protect_batch(pixels, keys, progress=step_progress)
        arrays = to_uint8_images(result.pixels)
        losses, met_flags = result.final_loss.cpu().tolist(), result.met_epsilon.cpu().tolist()
        for item, array, loss, met in zip(good, arrays, losses, met_flags):
            entry = ManifestEntry(item.name, plan.outputs[item.name], image_uid(item.name), batch.index, "protected",
                                  round(loss, 6), met, None, record.config_hash, record.model_id)
            writer.submit(array, plan.outputs[item.name], entry)
            report.protected += 1
            report.met_epsilon += int(met)
            if not met:
                report.missed_epsilon.append(item.name)
    finished += size
    if bar is not None:
        bar(finished)
        bar.set_postfix(met=report.met_epsilon, failed=len(report.failed))
    return finished
