"""The run's secret on disk: a seed file the operator keeps, and a run id that names it without revealing it.

Format (text, mode 0600):

    # pixelfade run secret ...
    seed 0x0123456789abcdef
    id 5d1c0b6e9a3f4e2d8c7b6a5f4e3d2c1b

``seed`` is the 64-bit secret (decimal or 0x hex); a file holding only an integer is read as a seed too.
``id`` is 128 random bits, drawn independently of the seed: the run record stores the id, so ``--resume`` can
refuse another seed file, yet nothing in the gallery lets a guess of the seed be checked (a hash of the seed
would). A seed file without an id gets one added (atomically, mode kept) the first time a run uses it.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_atomic
from .errors import GalleryError

SEED_BITS = 64
HEADER = ("# pixelfade run secret: the seed fixes every protected image's noise and masks.\n"
          "# Keep it private (whoever holds it can regenerate the noise) and keep it: --resume needs it.\n")


@dataclass(frozen=True)
class SeedFile:
    path: Path
    seed: int
    run_id: str


def _parse_int(text: str, path: Path) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise GalleryError(f"seed file {path}: {text!r} is not an integer; the seed is one integer (decimal or "
                           f"0x hex) in [0, 2^64). Create a fresh one with `pixelfade seed FILE`") from None
    if not 0 <= value < 2 ** SEED_BITS:
        raise GalleryError(f"seed file {path}: the seed must lie in [0, 2^64), got {value}")
    return value


def _parse(text: str, path: Path) -> tuple[int, str | None]:
    fields: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise GalleryError(f"seed file {path} is empty; it must hold the run's seed (an integer). Create one with "
                           f"`pixelfade seed FILE`, or name a file that does not exist yet and it will be created")
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return _parse_int(lines[0], path), None
    for line in lines:
        key, _, value = line.partition(" ")
        if key not in ("seed", "id") or not value.strip() or key in fields:
            raise GalleryError(f"seed file {path}: cannot read the line {line!r}; expected 'seed <integer>' and "
                               f"'id <hex>' lines (or a file holding only the seed)")
        fields[key] = value.strip()
    if "seed" not in fields:
        raise GalleryError(f"seed file {path} has no 'seed' line")
    run_id = fields.get("id")
    if run_id is not None and (len(run_id) != 32 or any(c not in "0123456789abcdef" for c in run_id)):
        raise GalleryError(f"seed file {path}: the id must be 32 lowercase hex digits, got {run_id!r}")
    return _parse_int(fields["seed"], path), run_id


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically with the given mode (the secret never exists with a wider one)."""
    write_atomic(path, lambda stream: stream.write(text.encode()), mode)


def create_seed_file(path: Path) -> SeedFile:
    """A new seed file with a fresh secret from os.urandom and a fresh id, mode 0600; refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise GalleryError(f"{path} already exists; a seed file is never overwritten (its images would become "
                           f"unresumable). Choose another name")
    if not path.parent.is_dir():
        raise GalleryError(f"cannot create the seed file {path}: folder {path.parent} does not exist")
    seed = int.from_bytes(os.urandom(SEED_BITS // 8), "little")
    run_id = secrets.token_hex(16)
    _write_private(path, f"{HEADER}seed {seed:#018x}\nid {run_id}\n")
    return SeedFile(path, seed, run_id)


def read_seed_file(path: Path, *, add_id: bool = True) -> SeedFile:
    """The seed and run id of an existing seed file; a file without an id gets one added when ``add_id``."""
    path = Path(path)
    if path.is_dir():
        raise GalleryError(f"--seed-file {path} is a folder; name a file")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GalleryError(f"seed file {path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GalleryError(f"cannot read the seed file {path}: {error}") from None
    seed, run_id = _parse(text, path)
    if run_id is None:
        if not add_id:
            raise GalleryError(f"seed file {path} has no id line; under torchrun every rank must read the same id: "
                               f"run once without torchrun, or create the file with `pixelfade seed FILE`")
        run_id = secrets.token_hex(16)
        try:
            _write_private(path, f"{HEADER}seed {seed:#018x}\nid {run_id}\n", os.stat(path).st_mode & 0o777)
        except OSError as error:
            raise GalleryError(f"seed file {path} has no id line and cannot be updated ({error}); create a seed "
                               f"file with `pixelfade seed FILE` and use that") from None
    return SeedFile(path, seed, run_id)
