"""OUT/run.json: everything that fixes a gallery run's bits, so that ``--resume``, ``merge`` and ``refine``
continue only the same run.

It records the config, the model (id, the spec it was loaded from, a digest of its weights), input size,
mean/std, batch size, backend, device type and model, CPU threads, torch version, the engine's speed options, the
output-name policy, the input list's size and digest, the package version and the seed file's id. It never
records the seed, nor anything computed from it (a hash of the seed would let a guess be checked). Its content is
a pure function of the run's settings (no time, host or rank), so every torchrun rank writes the same bytes.

Record format 1 (runs before format 2) lacks model_spec, torch_version, device_name and cpu_threads: there they
are unknown and not checked, and a config key it lacks is compared as FadeConfig's default.

``storage`` is how the outputs are stored (format, quality, encoder settings and library versions, the fallback's
bounds); a record without it predates storage formats: PNG.

``rng_contract`` names the key derivation (reference.derive_keys); a record without it predates contract 2: 1.

``speed_tuning``: when the run measured its batch size and speed options (engine.tuning), what it measured and
chose; the choice itself is in ``batch_size`` and ``acceleration``, which --resume and refine reuse and compare.
Informative only (measured speeds differ from run to run), so not compared.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import FadeConfig
from ..storage_format import StorageFormat
from ..atomic_file import default_file_mode, write_atomic
from .errors import GalleryError

RUN_RECORD = "run.json"
RECORD_FORMAT = 2
# Fields a format-1 record lacks (None there: unknown, not checked).
_LATER_FIELDS = ("model_spec", "torch_version", "device_name", "cpu_threads")
# Recorded but not part of the run's identity: the same weights loaded from another path give the same bits.
_NOT_COMPARED = ("config", "acceleration", "config_hash", "model_spec", "record_format", "speed_tuning")
_LABELS = {"model_digest": "model weights (digest)", "seed_id": "seed file (its id)",
           "inputs": "number of input images", "inputs_digest": "input file list", "version": "pixelfade version",
           "cpu_threads": "CPU threads (--threads)", "torch_version": "torch version",
           "device_name": "device model", "device": "device type", "rng_contract": "RNG contract",
           "storage": "storage (--format, --quality)"}
PNG_STORAGE = {"format": "png"}  # what a record without ``storage`` stored


def _config_with_defaults(config: dict) -> dict:
    """A recorded config with every key FadeConfig has: one a record lacks (it predates the field) is the
    field's default, which is what that run used."""
    defaults = {item.name: item.default for item in dataclasses.fields(FadeConfig)
                if item.default is not dataclasses.MISSING}
    return defaults | config


@dataclass(frozen=True)
class RunRecord:
    version: str
    config: dict
    config_hash: str
    model_id: str
    model_digest: str
    input_size: list
    mean: list
    std: list
    batch_size: int
    backend: str
    device: str
    acceleration: dict
    names: str
    inputs: int
    inputs_digest: str
    seed_id: str | None  # None: the run had no seed file, so it cannot be resumed
    model_spec: str | None = None  # what --model named (files as absolute paths): refine reloads it
    torch_version: str | None = None
    device_name: str | None = None  # the GPU's or CPU's model name
    cpu_threads: int | None = None  # torch's intra-op threads (bits depend on them on the CPU)
    record_format: int = 1  # a record without the field is format 1; new records are RECORD_FORMAT
    rng_contract: int = 1  # the key derivation (reference.derive_keys); records made before contract 2 lack it
    storage: dict | None = None  # how outputs are stored; None: a record before storage formats (PNG)
    speed_tuning: dict | None = None  # engine.tuning.SpeedChoice: how batch_size and acceleration were chosen

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def differences(self, new: RunRecord) -> list[str]:
        """What ``new`` changes, in words (empty when it continues this run)."""
        changes = []
        old_d, new_d = asdict(self), asdict(new)
        old_d["config"], new_d["config"] = _config_with_defaults(self.config), _config_with_defaults(new.config)
        old_d["storage"], new_d["storage"] = self.storage or PNG_STORAGE, new.storage or PNG_STORAGE
        for key in old_d:
            if key in _NOT_COMPARED or (key in _LATER_FIELDS and old_d[key] is None):
                continue
            if key == "cpu_threads" and self.device != "cpu":
                continue  # intra-op CPU threads do not touch the bits of a CUDA run
            if old_d[key] != new_d[key]:
                changes.append(f"{_LABELS.get(key, key)}: {old_d[key]} then, {new_d[key]} now")
        for group in ("config", "acceleration"):
            for key in sorted(set(old_d[group]) | set(new_d[group])):
                if old_d[group].get(key) != new_d[group].get(key):
                    changes.append(f"{group}.{key}: {old_d[group].get(key)} then, {new_d[group].get(key)} now")
        return changes


def recorded_storage(record: RunRecord) -> StorageFormat:
    """The storage format of the run (at the quality it asked for; a file's own is in its manifest line)."""
    settings = record.storage or PNG_STORAGE
    return StorageFormat(settings["format"], settings.get("quality"))


def read_run_record(out_dir: Path) -> RunRecord | None:
    path = Path(out_dir) / RUN_RECORD
    if not path.exists():
        return None
    try:
        return RunRecord(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise GalleryError(f"{path} is not a run record of this version of pixelfade ({error}); it may come from "
                           f"another tool or version: protect into a new output folder") from None


def write_run_record(out_dir: Path, record: RunRecord) -> None:
    text = record.to_json()
    write_atomic(Path(out_dir) / RUN_RECORD, lambda stream: stream.write(text.encode()), default_file_mode())


def check_same_run(old: RunRecord, new: RunRecord, refusal: str, advice: str) -> None:
    """Refuse (``refusal``: why, in words) when ``new`` differs from the run ``old`` in anything its bits depend
    on, naming each difference."""
    changes = old.differences(new)
    if changes:
        raise GalleryError(f"{refusal}; this command differs from the run in the output folder in: "
                           + "; ".join(changes) + f". {advice}")


def check_resume(old: RunRecord, new: RunRecord) -> None:
    check_same_run(old, new, "--resume would mix two runs in one gallery",
                   "Run it with the original settings, or protect into a new output folder")
