"""``pixelfade merge OUT``: join the per-rank manifests of a torchrun run into one, checking every line."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import GalleryError
from .manifest import Manifest, ManifestEntry, write_manifest
from .outputs import damaged_outputs
from .plan import inputs_digest
from .run_record import read_run_record
from .wording import named, plural


@dataclass(frozen=True)
class MergeResult:
    manifest: Path
    inputs: int
    ranks: int  # per-rank manifests joined; 0: the run already had one manifest (a single process)


def merge_manifests(out_dir: Path) -> MergeResult:
    """Validate every line of OUT's manifests (schema, paths inside OUT, outputs present and intact, each input
    exactly once, the run's config and model, the run's whole input list), write OUT/manifest.jsonl and remove
    the per-rank files."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise GalleryError(f"output folder {out_dir} does not exist")
    record = read_run_record(out_dir)
    if record is None:
        raise GalleryError(f"{out_dir} holds no run record (run.json): it is not a pixelfade output folder")
    target = out_dir / "manifest.jsonl"
    ranks = sorted(out_dir.glob("manifest.rank*.jsonl"))
    if not ranks and target.exists():
        return MergeResult(target, len(Manifest(target).read()), 0)
    if not ranks:
        raise GalleryError(f"{out_dir} has no manifest yet (manifest.jsonl or manifest.rank*.jsonl): the run "
                           f"protected nothing; run it again with --resume")
    sources = [target] * target.exists() + ranks
    seen: dict[str, Path] = {}
    entries: list[ManifestEntry] = []
    for source in sources:
        for entry in Manifest(source).read():
            if entry.path in seen:
                raise GalleryError(f"{entry.path} is listed twice ({seen[entry.path].name} and {source.name}); the "
                                   f"manifests do not come from one run: merge refused")
            if (entry.config_hash, entry.model_id) != (record.config_hash, record.model_id):
                raise GalleryError(f"{source.name} lists {entry.path} protected with config {entry.config_hash} and "
                                   f"model {entry.model_id}, but the run (run.json) has config {record.config_hash} "
                                   f"and model {record.model_id}: the manifests mix two runs, merge refused")
            seen[entry.path] = source
            entries.append(entry)
    damaged = damaged_outputs(out_dir, entries)
    if damaged:
        raise GalleryError(f"{plural(len(damaged), 'output')} listed in the manifests "
                           f"{'is' if len(damaged) == 1 else 'are'} missing or damaged: "
                           f"{named([f'{name} ({why})' for name, why in damaged])}; run the same torchrun command "
                           f"with --resume to redo them, then merge")
    if len(entries) != record.inputs:
        raise GalleryError(f"the manifests list {len(entries)} of the run's {record.inputs} inputs: some ranks did not "
                           f"finish; run the same torchrun command with --resume, then merge")
    if inputs_digest([e.path for e in entries]) != record.inputs_digest:
        raise GalleryError("the manifests list other inputs than the run record's input list: merge refused")
    write_manifest(target, entries)
    for rank in ranks:
        rank.unlink()
    return MergeResult(target, len(entries), len(ranks))
