"""OUT/run.json: everything that fixes a gallery run's bits, so that ``--resume`` continues only the same run.

It records the config, the model (id and a digest of its weights), input size, mean/std, batch size, backend,
device type, the engine's speed options, the output-name policy, the input list's size and digest, the
package version and the seed file's id. It never records the seed, nor anything computed from it (a hash of the
seed would let a guess be checked). Its content is a pure function of the run's settings (no time, host or
rank), so every torchrun rank writes the same bytes.

``rng_contract`` names the key derivation (reference.derive_keys); a record without it predates contract 2: 1.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import default_file_mode, write_atomic
from .errors import GalleryError

RUN_RECORD = "run.json"


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
    rng_contract: int = 1  # the key derivation (reference.derive_keys); records made before contract 2 lack it

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def differences(self, new: RunRecord) -> list[str]:
        """What ``new`` changes, in words (empty when it continues this run)."""
        changes = []
        old_d, new_d = asdict(self), asdict(new)
        labels = {"model_digest": "model weights (digest)", "seed_id": "seed file (its id)",
                  "inputs": "number of input images", "inputs_digest": "input file list",
                  "version": "pixelfade version", "rng_contract": "RNG contract"}
        for key in old_d:
            if key in ("config", "acceleration", "config_hash"):
                continue
            if old_d[key] != new_d[key]:
                changes.append(f"{labels.get(key, key)}: {old_d[key]} then, {new_d[key]} now")
        for group in ("config", "acceleration"):
            for key in sorted(set(old_d[group]) | set(new_d[group])):
                if old_d[group].get(key) != new_d[group].get(key):
                    changes.append(f"{group}.{key}: {old_d[group].get(key)} then, {new_d[group].get(key)} now")
        return changes


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


def check_resume(old: RunRecord, new: RunRecord) -> None:
    """Refuse to continue ``old`` with different settings, naming every difference."""
    changes = old.differences(new)
    if changes:
        raise GalleryError("--resume would mix two runs in one gallery; this command differs from the run in the "
                           "output folder in: " + "; ".join(changes) +
                           ". Run it with the original settings, or protect into a new output folder")
