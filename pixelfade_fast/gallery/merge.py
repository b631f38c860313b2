"""``pixelfade merge OUT``: join the per-rank manifests of a torchrun run into one, checking every line."""
from __future__ import annotations

from pathlib import Path

from .errors import GalleryError
from .manifest import Manifest, ManifestEntry, write_manifest
from .plan import inputs_digest
from .run_record import read_run_record


def merge_manifests(out_dir: Path) -> tuple[Path, int]:
    """Validate every line of OUT's manifests (schema, paths inside OUT, outputs present, each input exactly once,
    the run's whole input list), write OUT/manifest.jsonl and remove the per-rank files. Returns (path, lines)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise GalleryError(f"output folder {out_dir} does not exist")
    record = read_run_record(out_dir)
    if record is None:
        raise GalleryError(f"{out_dir} holds no run record (run.json): it is not a pixelfade output folder")
    ranks = sorted(out_dir.glob("manifest.rank*.jsonl"))
    if not ranks:
        raise GalleryError(f"{out_dir} has no per-rank manifests (manifest.rank*.jsonl): nothing to merge")
    sources = [out_dir / "manifest.jsonl"] * (out_dir / "manifest.jsonl").exists() + ranks
    seen: dict[str, Path] = {}
    entries: list[ManifestEntry] = []
    for source in sources:
        for entry in Manifest(source).read():
            if entry.path in seen:
                raise GalleryError(f"{entry.path} is listed twice ({seen[entry.path].name} and {source.name}); the "
                                   f"manifests do not come from one run: merge refused")
            if entry.status == "protected" and not (out_dir / entry.output).is_file():
                raise GalleryError(f"{source.name} lists {entry.path} but its output {entry.output} is missing; "
                                   f"rerun the run with --resume to redo it")
            seen[entry.path] = source
            entries.append(entry)
    if len(entries) != record.inputs:
        raise GalleryError(f"the manifests list {len(entries)} of the run's {record.inputs} inputs: some ranks did not "
                           f"finish; run the same torchrun command with --resume, then merge")
    if inputs_digest([e.path for e in entries]) != record.inputs_digest:
        raise GalleryError("the manifests list other inputs than the run record's input list: merge refused")
    target = out_dir / "manifest.jsonl"
    write_manifest(target, entries)
    for rank in ranks:
        rank.unlink()
    return target, len(entries)
