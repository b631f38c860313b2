"""Gallery protection: a folder of images in; protected images (PNG, JPEG, WebP), a manifest and a run record out.

inputs.py      the inputs under IN (symlink policy, formats) and their output names
plan.py        the batch plan and the torchrun shards of it
seed_file.py   the secret on disk and the run id that names it
run_record.py  OUT/run.json (everything the bits depend on) and the checks of --resume, merge and refine
manifest.py    OUT/manifest.jsonl: strict reading, repair of a cut last line, durable appends
content.py     digests of file bytes (the inputs protected, the outputs written)
outputs.py     is every listed output still the file written?
model_check.py the model tried on one dummy batch before a run writes anything
wording.py     counts and name lists in messages
image_io.py    background decoding, and encoding and writing of the outputs
run.py         protect_folder: check everything, then protect the owned batches
merge.py       pixelfade merge: join the per-rank manifests
refine.py      pixelfade refine: more CO-only steps for the images that missed ε
npy_layout.py  a run's images in the authors' img_npy/ layout (--npy-out)
"""
from .errors import GalleryError
from .inputs import find_inputs, image_uid, output_name
from .manifest import Manifest, ManifestEntry
from .merge import MergeResult, merge_manifests
from .npy_layout import NpyReport, write_img_npy
from .refine import RefineReport, refine_missed
from .plan import Batch, Shard, batch_plan
from .run import GalleryReport, GallerySettings, protect_folder
from .run_record import RunRecord, read_run_record
from .seed_file import create_seed_file, read_seed_file

__all__ = ["Batch", "GalleryError", "GalleryReport", "GallerySettings", "Manifest", "ManifestEntry", "MergeResult", "NpyReport",
           "RunRecord",
           "RefineReport", "Shard", "batch_plan", "create_seed_file", "find_inputs", "image_uid", "merge_manifests", "output_name",
           "protect_folder", "read_run_record", "read_seed_file", "refine_missed", "write_img_npy"]
