"""``protect_folder``: a folder of images in, protected images (PNG, JPEG or WebP), a manifest and a run record out.

A run is first checked whole (folders, inputs, output names, seed file, backend, the run already in OUT) and
only then touches the disk, so a run that cannot start leaves nothing behind. It then protects the batches of
the plan it owns, reading ahead and writing behind in background threads.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import _backend
from ..config import FadeConfig
from ..engine import Acceleration, StoringProtector
from ..engine.stored import fallback_policy
from ..engine.tuning import choose_speed
from ..feature_model import model_device
from ..input_space import InputSpace
from ..machine import device_name, torch_threads, usable_cpus
from ..models.digest import state_digest
from ..progress import ProgressBar
from ..version import __version__
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed
from ..storage_format import StorageFormat, to_arrays
from ..atomic_file import default_file_mode
from .errors import GalleryError
from .image_io import ImageReader, ImageWriter, LoadedImage, WrittenFile
from .inputs import InputListing, check_folders, check_output_names, find_inputs, image_uid
from .manifest import Manifest, ManifestEntry
from .model_check import check_model
from .outputs import damaged_outputs
from .wording import named, plural
from .plan import Batch, Shard, batch_plan, inputs_digest
from .run_record import (RECORD_FORMAT, RUN_RECORD, RunRecord, check_resume, check_same_run,
                         read_run_record, write_run_record)
from .seed_file import SeedFile, check_new_run_secret, create_seed_file, peek_seed_file, read_seed_file

PREFETCH_BATCHES = 2
DEFAULT_BATCH = 32  # when neither given, recorded nor tuned
Log = Callable[[str], None]


@dataclass(frozen=True)
class GallerySettings:
    """How a gallery run protects (everything but the model, the folders and the secret)."""

    config: FadeConfig = field(default_factory=lambda: FadeConfig(quantize=True))
    batch_size: int | None = None  # None: the resumed run's, else tuned, else DEFAULT_BATCH
    backend: str = "auto"
    acceleration: Acceleration = field(default_factory=Acceleration)  # options left None: as batch_size
    names: str = "stem"
    resume: bool = False
    io_workers: int = 2
    progress: bool | None = None  # None: a bar when stderr is a terminal
    threads: int | None = None  # torch's intra-op CPU threads; None: the resumed run's, else every usable CPU
    storage: StorageFormat = field(default_factory=StorageFormat)  # how outputs are stored (PNG, JPEG, WebP)
    tune: bool | None = None  # measure the batch size and options not given (engine.tuning); None: on a large CPU run


@dataclass
class GalleryReport:
    protected: int = 0
    met_epsilon: int = 0
    already_done: int = 0
    redone: list[str] = field(default_factory=list)  # listed outputs found missing or damaged, protected again
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # inputs left out by the listing
    missed_epsilon: list[str] = field(default_factory=list)  # protected this run, final loss >= ε
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.protected / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        redone = f" (of them {len(self.redone)} redone: missing or damaged)" if self.redone else ""
        return (f"protected {plural(self.protected, 'image')}{redone} ({self.met_epsilon} met epsilon, "
                f"{len(self.missed_epsilon)} did not), {len(self.failed)} failed, {self.already_done} already done, "
                f"{len(self.skipped)} skipped; {self.seconds:.1f} s, {self.images_per_s:.2f} images/s")


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
    listed: dict[str, ManifestEntry]  # every input with a manifest line (a line is never written twice)
    done: set[str]  # listed, and its output present and intact
    redo: list[tuple[str, str]]  # (input, why) listed but its output missing or damaged
    settings: GallerySettings  # the run's, with its batch size and speed options settled (given, recorded or tuned)
    resume: bool = False  # continue the run in OUT: its run.json stays as it is (the run's identity)
    created_out: bool = False  # OUT did not exist before this run


def _model_size(model: nn.Module) -> tuple[int, int]:
    size = tuple(getattr(model, "input_size", ()) or ())
    if len(size) != 2:
        raise GalleryError("the model must carry its input size (input_size = (H, W)), e.g. a "
                           "pixelfade_fast.models.ReIDModel or FeatureExtractor")
    return int(size[0]), int(size[1])


def _check(model: nn.Module, model_id: str, model_spec: str | None, in_dir: Path, out_dir: Path,
           settings: GallerySettings, seed_file: Path | None, shard: Shard, allow_weak_seed: bool) -> _Plan:
    in_real, out_real = check_folders(Path(in_dir), Path(out_dir))
    if settings.batch_size is not None and settings.batch_size < 1:
        raise GalleryError(f"--batch-size must be at least 1, got {settings.batch_size}")
    if settings.threads is not None and settings.threads < 1:
        raise GalleryError(f"--threads must be at least 1, got {settings.threads}")
    if not settings.config.quantize:
        raise GalleryError("gallery runs quantise (the PNG must be the image whose loss was measured): "
                           "use FadeConfig(quantize=True)")
    size = _model_size(model)
    if not out_real.exists() and not out_real.parent.is_dir():
        raise GalleryError(f"cannot create the output folder {out_dir}: the folder {out_real.parent} does not "
                           f"exist; create it first")
    listing = find_inputs(in_real)
    if not listing.images:
        raise GalleryError(f"no images found under {in_dir} (read: jpg, jpeg, png, bmp, webp, tif, tiff)")
    outputs = check_output_names(listing.images, settings.names, settings.storage.extension)
    device = model_device(model)
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
    threads = settings.threads or (existing.cpu_threads if settings.resume else None) or usable_cpus()
    if settings.resume:  # what the run chose (given, by default or tuned) for what this command does not give
        settings = dataclasses.replace(settings, batch_size=settings.batch_size or existing.batch_size,
                                       acceleration=settings.acceleration.given_or(existing.acceleration))
    elif shard.world_size > 1 and settings.tune:
        raise GalleryError("--tune under torchrun would let every rank measure and choose on its own: tune in a "
                           "single process, then give its choice (--batch-size, --channels-last, --fold-batchnorm)")
    space = InputSpace.of(model).to_json()
    record = RunRecord(version=__version__, config=settings.config.to_dict(),
                       config_hash=settings.config.config_hash(), model_id=model_id,
                       model_digest=state_digest(model), input_size=list(size), mean=space["mean"], std=space["std"],
                       batch_size=settings.batch_size or DEFAULT_BATCH, backend=backend, device=device.type,
                       acceleration=settings.acceleration.resolved(device).to_dict(), names=settings.names,
                       inputs=len(listing.images), inputs_digest=inputs_digest(listing.images),
                       seed_id=(seed.run_id or None) if seed is not None else None, model_spec=model_spec,
                       rng_contract=seed.contract if seed is not None else DEFAULT_CONTRACT,
                       torch_version=torch.__version__, device_name=device_name(device), cpu_threads=threads,
                       record_format=RECORD_FORMAT,
                       storage=settings.storage.settings() | fallback_policy(settings.storage))
    listed: dict[str, ManifestEntry] = {}
    redo: list[tuple[str, str]] = []
    if settings.resume:
        entries = [entry for manifest in all_manifests(out_real) for entry in manifest.read()]
        if existing.inputs_digest != record.inputs_digest:
            raise GalleryError(_input_list_change(entries, listing.images, existing.inputs))
        check_resume(existing, record)
        record = existing  # the run's identity: new manifest lines carry its config_hash and model_id
        listed = {entry.path: entry for entry in entries}
        mine = {name for batch in batch_plan(listing.images, record.batch_size) if shard.owns(batch)
                for name in batch.images}
        redo = damaged_outputs(out_real, [entry for entry in entries if entry.path in mine], settings.io_workers)
    elif out_real.exists() and any(not _another_rank_starting(p, shard) for p in out_real.iterdir()):
        # Another torchrun rank of this same run may have started first: the same record, and nothing listed in
        # this rank's manifest (a single process must find every manifest empty).
        mine = [Manifest(out_real / shard.manifest_name)] if shard.world_size > 1 else all_manifests(out_real)
        if existing is None and shard.world_size > 1:
            existing = read_run_record(out_real)  # another rank may have renamed its record into place meanwhile
        listed_count = sum(len(m.read()) for m in mine)
        if existing is not None and shard.world_size > 1 and not listed_count:
            check_same_run(existing, record, f"rank {shard.rank} would mix two runs in one gallery",
                           "Start every rank with the same settings")
        if existing is None or listed_count or existing.to_json() != record.to_json():
            what = (f"a pixelfade run ({plural(sum(len(m.read()) for m in all_manifests(out_real)), 'image')} "
                    f"listed)" if existing is not None else "other files")
            raise GalleryError(f"output folder {out_dir} already holds {what}; pass --resume to continue a run, "
                               f"or choose an empty output folder")
    check_model(model, size, model_id)
    broken = {name for name, _ in redo}
    done = {name for name in listed if name not in broken}
    return _Plan(in_real, out_real, listing, outputs, batch_plan(listing.images, record.batch_size), record,
                 seed, Path(seed_file) if seed_file is not None else None, listed, done, redo,
                 settings, settings.resume)


def _input_list_change(entries: list[ManifestEntry], images: list[str], recorded: int) -> str:
    """Which inputs changed since the run: those its manifests list that are gone, and those not listed."""
    current, listed = set(images), {entry.path for entry in entries}
    gone = sorted(listed - current)
    unlisted = sorted(current - listed)
    parts = [f"the run had {plural(recorded, 'input')}, IN now has {len(images)}"]
    if gone:
        parts.append(f"protected by the run but no longer under IN: {named(gone)}")
    if unlisted:
        parts.append(f"under IN but not protected yet (new, or not reached before the stop): {named(unlisted)}")
    return ("--resume would mix two runs in one gallery: the input list changed (" + "; ".join(parts) +
            "). Restore IN as it was, or protect into a new output folder")


def _another_rank_starting(path: Path, shard: Shard) -> bool:
    """Under torchrun, the temporary file of a run record another rank is writing at this moment: not a sign of
    another run (that rank's record, once renamed into place, is compared like any other)."""
    return shard.world_size > 1 and path.name.startswith(f".{RUN_RECORD}.") and path.name.endswith(".tmp")


def _start(plan: _Plan, shard: Shard, log: Log) -> int:
    """Create OUT (its parent exists: checked), then create or complete the seed file and write the run record.
    Returns the seed. When any of it fails, what it created is removed again: a run that cannot start writes
    nothing."""
    plan.created_out = not plan.out_dir.exists()
    creates_seed_file = plan.seed_path is not None and plan.seed is None
    try:
        plan.out_dir.mkdir(exist_ok=True)
        seed = _open_seed(plan, log)
        if not plan.resume:
            write_run_record(plan.out_dir, plan.record)
    except (OSError, GalleryError) as error:
        if plan.created_out:
            shutil.rmtree(plan.out_dir, ignore_errors=True)
        if creates_seed_file and isinstance(error, OSError):
            plan.seed_path.unlink(missing_ok=True)
        if isinstance(error, GalleryError):
            raise
        raise GalleryError(f"cannot write into the output folder {plan.out_dir}: {error.strerror or error}; "
                           f"choose a folder you can write to") from None
    removed = _remove_stale_temp_files(plan, shard)
    if removed:
        log(f"removed {plural(removed, 'temporary file')} left by an interrupted write")
    return seed


def _open_seed(plan: _Plan, log: Log) -> int:
    if plan.seed_path is None:
        log("no --seed-file: the secret is drawn now and kept nowhere, so this run cannot be resumed")
        return random_seed(plan.record.rng_contract)
    if plan.seed is None:
        created = create_seed_file(plan.seed_path)
        log(f"created the seed file {plan.seed_path} (mode 0600): keep it private and keep it; --resume needs it")
        plan.record = dataclasses.replace(plan.record, seed_id=created.run_id)
        return created.seed
    completed = read_seed_file(plan.seed_path)  # adds an id line if the file has none
    if completed.run_id != plan.seed.run_id:
        log(f"added a run id to the seed file {plan.seed_path}")
        plan.record = dataclasses.replace(plan.record, seed_id=completed.run_id)
    return completed.seed


# What atomic.write_atomic leaves when killed between creating its temporary file and renaming it:
# ".<target name>.<8 random characters>.tmp" beside the target.
_TEMP_FILE = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def _remove_stale_temp_files(plan: _Plan, shard: Shard) -> int:
    """Remove the temporary files of writes this process would make (its outputs, its manifest; the run
    record and the merged manifest only without torchrun): under torchrun another rank may be writing its own
    at this moment."""
    owned = {plan.outputs[name] for batch in plan.batches if shard.owns(batch) for name in batch.images}
    owned.add(shard.manifest_name)
    if shard.world_size == 1:
        owned |= {RUN_RECORD, "manifest.jsonl"}
    removed = 0
    for path in plan.out_dir.rglob(".*.tmp"):
        match = _TEMP_FILE.match(path.name)
        target = (path.parent / match["target"]).relative_to(plan.out_dir).as_posix() if match else None
        if target in owned and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def protect_folder(model: nn.Module, in_dir: Path, out_dir: Path, settings: GallerySettings, *,
                   model_id: str, model_spec: str | None = None, seed_file: Path | None = None,
                   shard: Shard | None = None, log: Log = print, allow_weak_seed: bool = False) -> GalleryReport:
    """Protect every image under ``in_dir`` into ``out_dir`` (see the module and README for the guarantees).
    ``model_spec`` is what names the model for ``load_model_spec`` (recorded so that refine can reload it).
    ``allow_weak_seed``: start a new run on a seed file holding a seed below 2^32 or a 64-bit secret of the
    format before RNG contract 2 (which then runs under contract 1); for tests only (see seed_file.py)."""
    shard = shard or Shard()
    plan = _check(model, model_id, model_spec, in_dir, out_dir, settings, seed_file, shard, allow_weak_seed)
    if not plan.resume:
        _settle_speed(model, plan, shard, log)
    settings = plan.settings
    seed = _start(plan, shard, log)
    report = GalleryReport(skipped=list(plan.listing.skipped))
    mine = [b for b in plan.batches if shard.owns(b)]
    todo = [b for b in mine if not all(name in plan.done for name in b.images)]
    report.already_done = sum(len(b.images) for b in mine if b not in todo)
    report.redone = [name for name, _ in plan.redo]
    total = sum(len(b.images) for b in todo)
    for name, reason in plan.listing.skipped:
        log(f"skipped {name}: {reason}")
    if plan.redo:
        log(f"redoing {plural(len(plan.redo), 'output')} the manifest lists but found missing or damaged: "
            + named([f"{plan.outputs.get(name, name)} ({why})" for name, why in plan.redo]))
    log(f"{plural(total, 'image')} to protect in {plural(len(todo), 'batch', 'batches')} of up to {settings.batch_size} "
        f"({report.already_done} already done) into {out_dir}")
    manifest = Manifest(plan.out_dir / shard.manifest_name)
    if manifest.repair():
        log(f"{manifest.path}: dropped a last line cut short by an earlier crash (its image is redone)")
    with torch_threads(plan.record.cpu_threads or settings.threads or usable_cpus()):
        _protect_batches(model, plan, todo, seed, settings, manifest, report, total, log)
    return report


def _settle_speed(model: nn.Module, plan: _Plan, shard: Shard, log: Log) -> None:
    """A new run's batch size and speed options: those given, the rest measured (engine.tuning; not under
    torchrun, where each rank would choose on its own) or the defaults; before anything is written, so that the
    choice goes into the run record, which --resume and refine then follow."""
    settings, record = plan.settings, plan.record
    with torch_threads(record.cpu_threads):
        speed = choose_speed(model, (3, *record.input_size), settings.config, images=len(plan.listing.images),
                             backend=record.backend, acceleration=settings.acceleration,
                             batch_size=settings.batch_size, default_batch=DEFAULT_BATCH,
                             tune=settings.tune if shard.world_size == 1 else False)
    plan.settings = dataclasses.replace(settings, batch_size=speed.batch_size, acceleration=speed.acceleration)
    if speed.tuning is None:
        return
    log(speed.note)
    plan.record = dataclasses.replace(record, batch_size=speed.batch_size,
                                      acceleration=speed.acceleration.resolved(model_device(model)).to_dict(),
                                      speed_tuning=speed.tuning.to_dict())
    plan.batches = batch_plan(plan.listing.images, speed.batch_size)


def _protect_batches(model: nn.Module, plan: _Plan, todo: list[Batch], seed: int, settings: GallerySettings,
                     manifest: Manifest, report: GalleryReport, total: int, log: Log) -> None:
    config = settings.config
    record = plan.record
    file_mode = default_file_mode()
    show = settings.progress if settings.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(total, "protect", close_at_total=False) if show and total else None
    start = time.perf_counter()

    def written(entry: ManifestEntry, file: WrittenFile | None) -> None:  # on a writer thread, serialised
        if file is not None:
            entry = dataclasses.replace(entry, output_digest=file.digest, output_size=file.size)
        if entry.path not in plan.listed:  # a redone output keeps its line (the same bytes: the same digest)
            manifest.append([entry])
            plan.listed[entry.path] = entry
        plan.done.add(entry.path)

    reader = ImageReader(plan.in_dir, tuple(record.input_size), settings.io_workers)
    writer = ImageWriter(plan.out_dir, settings.io_workers, file_mode, written, settings.storage)
    finished = 0.0
    try:
        with StoringProtector(model, config, settings.storage, backend=settings.backend,
                              acceleration=settings.acceleration) as protector:
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


def _run_batch(protector: StoringProtector, batch: Batch, loaded: list[LoadedImage], seed: int, plan: _Plan,
               record: RunRecord, writer: ImageWriter, report: GalleryReport, bar, finished: float,
               size: int) -> float:
    good = [item for item in loaded if item.pixels is not None]
    for item in loaded:
        known = plan.listed.get(item.name)
        if known is not None and known.input_digest is not None and item.digest != known.input_digest:
            raise GalleryError(f"input {item.name} changed since the run protected it (its bytes differ); the "
                               f"images protected with it in batch {batch.index} would change too: restore it, or "
                               f"protect into a new output folder")
        if item.pixels is None:
            report.failed.append((item.name, item.error))
            writer.record(ManifestEntry(item.name, None, image_uid(item.name), batch.index, "failed", None, None,
                                        item.error, record.config_hash, record.model_id,
                                        input_digest=item.digest))
    if good:
        pixels = torch.stack([item.pixels for item in good]).to(protector.device)
        keys = derive_keys(seed, [image_uid(item.name) for item in good], record.rng_contract)

        def step_progress(done: int, steps: int) -> None:
            if bar is not None:
                bar(finished + len(good) * done / steps)

        result = protector.protect_batch(pixels, keys, progress=step_progress)
        files = result.files if result.files is not None else to_arrays(result.pixels)  # PNG: encoded by the writer
        losses, met_flags = result.final_loss.cpu().tolist(), result.met_epsilon.cpu().tolist()
        for item, file, loss, met, quality, steps in zip(good, files, losses, met_flags, result.quality,
                                                         result.fallback_steps):
            entry = ManifestEntry(item.name, plan.outputs[item.name], image_uid(item.name), batch.index, "protected",
                                  round(loss, 6), met, None, record.config_hash, record.model_id,
                                  input_digest=item.digest, quality=quality, fallback_steps=steps)
            writer.submit(file, plan.outputs[item.name], entry)
            report.protected += 1
            report.met_epsilon += int(met)
            if not met:
                report.missed_epsilon.append(item.name)
    finished += size
    if bar is not None:
        bar.set_postfix(met=report.met_epsilon, failed=len(report.failed))  # before the count: shown with it
        bar(finished)
    return finished
