"""``pixelfade protect``, ``pixelfade merge`` and ``pixelfade seed``: the gallery's commands."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .._backend import backend_choices
from ..errors import UserError
from .options import (HelpFormatter, acceleration_from_args, add_acceleration_arguments, add_config_arguments,
                      add_device_argument, add_model_arguments, add_storage_arguments, config_from_args,
                      load_model_from_args, positive_int, resolve_device, storage_from_args)

MISSED_SHOWN = 10
MODEL_REQUIRED = ("--model is required: name the authorised Re-ID model the protected gallery must keep working "
                  "with: a zoo name (`pixelfade models`), NAME:CHECKPOINT, FILE.onnx or package.module:callable "
                  "(docs/models.md)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # torchrun stops its workers with SIGTERM: treat it like Ctrl-C


def model_spec(args: argparse.Namespace) -> str:
    """What --model (and --weights) name, with files as absolute paths: recorded in run.json so that refine can
    load the same model from any working folder."""
    spec = args.model.strip()
    if args.weights is not None:  # the older spelling, as load_model_spec reads it
        spec = args.weights if args.weights.lower().endswith(".onnx") else f"{spec}:{args.weights}"
    if spec.lower().endswith(".onnx"):
        return str(Path(spec).resolve())
    name, sep, rest = spec.partition(":")
    if sep and Path(rest).exists():
        return f"{name}:{Path(rest).resolve()}"
    return spec


def cmd_protect(args: argparse.Namespace) -> int:
    from ..gallery import GallerySettings, Shard, protect_folder, write_img_npy
    from ..gallery.npy_layout import check_npy_out

    if args.model is None:
        raise UserError(MODEL_REQUIRED)
    shard = Shard.from_env()
    if args.npy_out is not None:
        if shard.world_size > 1:
            raise UserError("--npy-out needs the whole run: under torchrun, write the layout after `pixelfade merge` "
                            "with pixelfade_fast.gallery.write_img_npy(IN, OUT, DIR)")
        check_npy_out(Path(args.npy_out))
    device = resolve_device(args.device, int(os.environ.get("LOCAL_RANK", 0)) if shard.world_size > 1 else None)
    config = config_from_args(args, quantize=True)
    storage = storage_from_args(args)
    model = load_model_from_args(args, device)
    settings = GallerySettings(config=config, batch_size=args.batch_size, backend=args.backend,
                               acceleration=acceleration_from_args(args),
                               names="keep-suffix" if args.keep_suffix else "stem", resume=args.resume,
                               io_workers=args.io_workers, progress=False if args.no_progress else None,
                               threads=args.threads, storage=storage, tune=args.tune)
    seed_file = Path(args.seed_file) if args.seed_file else None
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        report = protect_folder(model, Path(args.input), Path(args.output), settings, model_id=model.model_id,
                                model_spec=model_spec(args), seed_file=seed_file, shard=shard, log=_log,
                                allow_weak_seed=args.allow_weak_seed)
    except KeyboardInterrupt:
        hint = ("run the same command with --resume to continue" if seed_file is not None
                else "this run had no --seed-file, so it cannot be resumed")
        # after a Ctrl-C the terminal shows "^C" with no newline; a signal from another process (torchrun's
        # SIGTERM) leaves the line clean
        newline = "\n" if sys.stderr.isatty() else ""
        _log(f"{newline}interrupted: every image finished so far is written and listed in {args.output}'s manifest; {hint}")
        return 130
    print(report.summary())
    for name, reason in report.failed:
        _log(f"  failed: {name}: {reason}")
    if args.npy_out is not None:
        _log(write_img_npy(Path(args.input), Path(args.output), Path(args.npy_out)).summary())
    if report.missed_epsilon:
        shown = ", ".join(report.missed_epsilon[:MISSED_SHOWN])
        more = f" and {len(report.missed_epsilon) - MISSED_SHOWN} more" if len(report.missed_epsilon) > MISSED_SHOWN else ""
        _log(f"  above epsilon: {shown}{more} (met_epsilon false in the manifest)")
    return 1 if report.failed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ..gallery import merge_manifests

    merged = merge_manifests(Path(args.output))
    if merged.ranks == 0:
        print(f"nothing to merge: {merged.manifest} is already the run's one manifest ({merged.inputs} inputs; "
              f"merge joins the per-rank manifests of a torchrun run)")
    else:
        print(f"wrote {merged.manifest} ({merged.inputs} inputs from {merged.ranks} ranks)")
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from ..gallery import read_run_record, refine_missed
    from ..gallery.errors import GalleryError

    record = read_run_record(Path(args.output)) if Path(args.output).is_dir() else None
    if record is None:
        raise GalleryError(f"{args.output} holds no run record (run.json): nothing to refine")
    device = resolve_device(args.device or record.device)
    if args.model is None:
        if record.model_spec is None:
            raise UserError(f"{args.output}'s run record predates recording the model's spec: pass --model with "
                            f"the run's model ({record.model_id})")
        args.model = record.model_spec
        # the run's own input size and normalisation, as run.json records them
        args.input_size = args.input_size or record.input_size
        args.mean, args.std = args.mean or record.mean, args.std or record.std
    model = load_model_from_args(args, device)
    report = refine_missed(model, Path(args.input), Path(args.output), steps=args.steps, batch_size=args.batch_size,
                           backend=args.backend, acceleration=acceleration_from_args(args), threads=args.threads,
                           progress=False if args.no_progress else None, log=_log)
    print(report.summary())
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from ..gallery import create_seed_file

    created = create_seed_file(Path(args.file))
    print(f"wrote {created.path} (a 256-bit secret, RNG contract {created.contract}, mode 0600); pass it as "
          f"--seed-file and keep it private")
    return 0


def add_threads_argument(group, default: str = "with --resume the run's, else every CPU this process may use") -> None:
    group.add_argument("--threads", type=positive_int, metavar="N",
                       help=f"torch's CPU threads (default: {default}); on the CPU the bits depend on it, so it is "
                            f"recorded and --resume and refine refuse another count. OMP_NUM_THREADS is not used: "
                            f"a torchrun rank and a single process get the same default")


def add_gallery_commands(commands) -> None:
    protect = commands.add_parser(
        "protect", formatter_class=HelpFormatter, help="protect every image of a folder into OUT",
        description="Protect every image under IN (jpg, jpeg, png, bmp, webp, tif, tiff; searched recursively) into "
                    "OUT/<path>.png (.jpg, .webp with --format), resized to the model's input size (--input-size), with OUT/manifest.jsonl "
                    "(one line per image, with digests of its input and output) and OUT/run.json (everything the "
                    "bits depend on, never the seed). Exit status: 0 done, 1 some inputs failed, 2 the run could "
                    "not start, 130 interrupted. --model is required (the authorised model is the operator's "
                    "choice). docs/gallery.md says what is guaranteed.")
    protect.add_argument("input", metavar="IN", help="folder of images")
    protect.add_argument("output", metavar="OUT", help="output folder (created; must not overlap IN)")
    add_model_arguments(protect)
    protect.set_defaults(model=None)  # the operator chooses the authorised model: no default (checked in the command)
    run = protect.add_argument_group("the run")
    run.add_argument("--seed-file", metavar="FILE",
                     help="the run's secret; a path that does not exist is created with a fresh 256-bit secret (mode "
                          "0600). A file group or others can access is refused. Without it the secret is random and "
                          "kept nowhere, and the run cannot be resumed")
    run.add_argument("--allow-weak-seed", action="store_true",
                     help="let a new run use a seed below 2^32 or a 64-bit seed file of the format before RNG "
                          "contract 2 (which then runs under contract 1); for tests only: such a secret can be "
                          "guessed or searched. Resuming a run needs no flag")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in OUT (refused when any setting, the model or the seed file differs)")
    run.add_argument("--batch-size", type=positive_int,
                     help="images protected together (default: with --resume the run's; else tuned, see --tune; "
                          "else 32); with the sorted input list it fixes the batch plan, so it is part of the run "
                          "(the bits of an image depend on its batch)")
    run.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None,
                     help="before a new run, time a few steps of each batch size (16, 32, 64), memory layout and "
                          "BatchNorm folding not given on the command line, on this model and input size, and run "
                          "with the fastest; the choice is printed, recorded in run.json (--resume and refine "
                          "reuse it) and cached per machine and model (docs/performance.md says where). Its cost "
                          "is capped at 5%% of the run's estimated time (default: on the CPU for runs of 256 "
                          "images or more; --no-tune: the defaults, for the same bits on every machine)")
    add_storage_arguments(run, "each protected image")
    run.add_argument("--keep-suffix", action="store_true",
                     help="name outputs <name>.<ext>.png (default: <name>.png; inputs that would share an output "
                          "are refused)")
    add_device_argument(run)
    run.add_argument("--backend", default="auto", choices=backend_choices(),
                     help="fade-step implementation (`pixelfade backends` lists what runs here)")
    add_threads_argument(run)
    run.add_argument("--io-workers", type=positive_int, default=2, help="threads decoding and writing images")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--npy-out", metavar="DIR",
                     help="when the run ends, also write DIR/img_npy/: the originals and protected images as the "
                          "authors' recovery_attack.py reads them (train set: IN's bounding_box_train/ or train/; "
                          "docs/drop-in.md); a resumed run writes the whole gallery's")
    add_acceleration_arguments(protect)
    add_config_arguments(protect, exclude=("quantize",))
    protect.set_defaults(func=cmd_protect)

    merge = commands.add_parser(
        "merge", formatter_class=HelpFormatter, help="join the per-rank manifests of a torchrun run (checking every line)",
        description="Join OUT/manifest.rank*.jsonl of a finished torchrun run into OUT/manifest.jsonl, after checking "
                    "every line (fields, paths, each input exactly once, the run's config and model, every output "
                    "present and intact, the run's whole input list), then remove the per-rank files. On a "
                    "single-process run there is nothing to merge: it says so and exits 0.")
    merge.add_argument("output", metavar="OUT", help="the run's output folder")
    merge.set_defaults(func=cmd_merge)

    refine = commands.add_parser(
        "refine", formatter_class=HelpFormatter, help="more CO-only steps for the images of a run that missed ε",
        description="Continue every image that OUT's manifest lists as above epsilon from its stored file (a JPEG "
                    "or WebP from its decoded pixels, at the file's quality) with CO-only steps (no replacement, so "
                    "no seed), replacing the file and its manifest line where the loss (of the decoded file) fell. The originals under IN must be the run's (checked against their digests), and so must "
                    "the model (default: the one OUT/run.json records) and everything the bits depend on.")
    refine.add_argument("input", metavar="IN", help="the run's input folder (the originals define the targets)")
    refine.add_argument("output", metavar="OUT", help="the run's output folder")
    add_model_arguments(refine)
    refine.set_defaults(model=None)
    refine.add_argument("--steps", type=positive_int, default=100, help="CO-only steps at most per image")
    refine.add_argument("--batch-size", type=positive_int, help="images per batch (default: the run's)")
    refine.add_argument("--device", help="cpu, cuda or cuda:N (default: the run's device type)")
    refine.add_argument("--backend", choices=backend_choices(),
                        help="fade-step implementation (default: the run's)")
    add_threads_argument(refine, "the run's")
    refine.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_acceleration_arguments(refine)
    refine.set_defaults(func=cmd_refine)

    seed = commands.add_parser("seed", formatter_class=HelpFormatter,
                               help="create a seed file with a fresh 256-bit secret (mode 0600) for --seed-file")
    seed.add_argument("file", metavar="FILE", help="the file to create (never overwritten)")
    seed.set_defaults(func=cmd_seed)
