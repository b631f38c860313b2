"""The run's secret on disk: a seed file the operator keeps, and a run id that names it without revealing it.

Format (text, mode 0600; ``pixelfade seed`` writes it):

    # pixelfade run secret ...
    contract 2
    seed 0x<64 hex digits>
    id 5d1c0b6e9a3f4e2d8c7b6a5f4e3d2c1b

``contract 2`` (RNG contract v2, DESIGN.md): ``seed`` is a 256-bit secret, from which every image's keys are
derived with keyed BLAKE2b. A file without a ``contract`` line is in the format of runs made before v2 (contract
1: a 64-bit ``seed`` line, or a file holding only an integer): it still continues (``--resume``) the runs it
started, with the same bits, but a new run refuses it unless told ``allow_weak`` (``--allow-weak-seed``, for
tests), as it refuses any seed below 2^32 (a typed number).

``id`` is 128 random bits, drawn independently of the seed: the run record stores the id, so ``--resume`` can
refuse another seed file, yet nothing in the gallery lets a guess of the seed be checked (a hash of the seed
would). A seed file without an id gets one added (atomically, its mode kept) the first time a run uses it.

A seed file that group or others may access (mode & 0o077, as ssh refuses private keys) is refused.
"""
from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ..reference.rng import DEFAULT_CONTRACT, RNG_CONTRACTS, SEED_BITS, random_seed
from ..atomic_file import write_atomic
from .errors import GalleryError

WEAK_SEED_LIMIT = 2**32  # below this a seed is a typed number, not a drawn secret
HEADER = ("# pixelfade run secret: the seed fixes every protected image's noise and masks.\n"
          "# Keep it private (whoever holds it can regenerate the noise) and keep it: --resume needs it.\n")
NEW_SECRET_HINT = "create a 256-bit secret with `pixelfade seed FILE`"


@dataclass(frozen=True)
class SeedFile:
    path: Path
    seed: int
    run_id: str
    contract: int = DEFAULT_CONTRACT  # the RNG contract its runs use (1: a seed file made before contract 2)


def _parse_int(text: str, path: Path, contract: int) -> int:
    bits = SEED_BITS[contract]
    try:
        value = int(text, 0)
    except ValueError:
        raise GalleryError(f"seed file {path}: {text!r} is not an integer; the seed is one integer (decimal or "
                           f"0x hex) in [0, 2^{bits}). Create a fresh one with `pixelfade seed FILE`") from None
    if not 0 <= value < 2**bits:
        raise GalleryError(f"seed file {path}: the seed must lie in [0, 2^{bits}) (contract {contract}), got {value}")
    return value


def _parse(text: str, path: Path) -> tuple[int, str | None, int]:
    """(seed, run id or None, contract) of a seed file's text."""
    fields: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise GalleryError(f"seed file {path} is empty; it must hold the run's seed (an integer). Create one with "
                           f"`pixelfade seed FILE`, or name a file that does not exist yet and it will be created")
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return _parse_int(lines[0], path, 1), None, 1
    for line in lines:
        key, _, value = line.partition(" ")
        if key not in ("contract", "seed", "id") or not value.strip() or key in fields:
            raise GalleryError(f"seed file {path}: cannot read the line {line!r}; expected 'contract 2', "
                               f"'seed <integer>' and 'id <hex>' lines (or a file holding only the seed)")
        fields[key] = value.strip()
    if "seed" not in fields:
        raise GalleryError(f"seed file {path} has no 'seed' line")
    contract_text = fields.get("contract", "1")
    if contract_text not in [str(c) for c in RNG_CONTRACTS]:
        raise GalleryError(f"seed file {path}: unknown contract {contract_text!r}; this version of pixelfade reads "
                           f"contracts {', '.join(map(str, RNG_CONTRACTS))}")
    contract = int(contract_text)
    run_id = fields.get("id")
    if run_id is not None and (len(run_id) != 32 or any(c not in "0123456789abcdef" for c in run_id)):
        raise GalleryError(f"seed file {path}: the id must be 32 lowercase hex digits, got {run_id!r}")
    return _parse_int(fields["seed"], path, contract), run_id, contract


def _format(seed: int, run_id: str, contract: int) -> str:
    """The file's text; a contract-1 file keeps the format it had before contract 2 (no contract line)."""
    if contract == 1:
        return f"{HEADER}seed {seed:#018x}\nid {run_id}\n"
    return f"{HEADER}contract {contract}\nseed {seed:#066x}\nid {run_id}\n"


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically with the given mode (the secret never exists with a wider one)."""
    write_atomic(path, lambda stream: stream.write(text.encode()), mode)


def _private_mode(path: Path) -> int:
    """The file's permission bits; refuses a file that group or others may read or write (as ssh does)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        raise GalleryError(f"seed file {path} not found") from None
    except OSError as error:
        raise GalleryError(f"cannot read the seed file {path}: {error}") from None
    if mode & 0o077:
        raise GalleryError(f"seed file {path} is open to group or others (mode {mode:04o}); whoever reads it can "
                           f"regenerate every protected image's noise. Run `chmod 600 {path}` and keep it private")
    return mode


def create_seed_file(path: Path) -> SeedFile:
    """A new seed file with a fresh 256-bit secret from os.urandom and a fresh id, mode 0600; never overwrites."""
    path = Path(path)
    if path.exists():
        raise GalleryError(f"{path} already exists; a seed file is never overwritten (its images would become "
                           f"unresumable). Choose another name")
    if not path.parent.is_dir():
        raise GalleryError(f"cannot create the seed file {path}: folder {path.parent} does not exist")
    seed = random_seed(DEFAULT_CONTRACT)
    run_id = secrets.token_hex(16)
    _write_private(path, _format(seed, run_id, DEFAULT_CONTRACT))
    return SeedFile(path, seed, run_id, DEFAULT_CONTRACT)


def peek_seed_file(path: Path) -> SeedFile:
    """The seed file's contents without changing it (a file without an id gets run_id "" for now)."""
    path = Path(path)
    if path.is_dir():
        raise GalleryError(f"--seed-file {path} is a folder; name a file")
    _private_mode(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise GalleryError(f"cannot read the seed file {path}: {error}") from None
    seed, run_id, contract = _parse(text, path)
    return SeedFile(path, seed, run_id or "", contract)


def read_seed_file(path: Path, *, add_id: bool = True) -> SeedFile:
    """The seed, run id and contract of an existing seed file; a file without an id gets one when ``add_id``."""
    found = peek_seed_file(path)
    if found.run_id:
        return found
    if not add_id:
        raise GalleryError(f"seed file {path} has no id line; under torchrun every rank must read the same id: "
                           f"run once without torchrun, or create the file with `pixelfade seed FILE`")
    run_id = secrets.token_hex(16)
    try:  # the mode checked private above, kept as it is (never loosened)
        _write_private(found.path, _format(found.seed, run_id, found.contract), _private_mode(found.path))
    except OSError as error:
        raise GalleryError(f"seed file {path} has no id line and cannot be updated ({error}); create a seed "
                           f"file with `pixelfade seed FILE` and use that") from None
    return SeedFile(found.path, found.seed, run_id, found.contract)


def check_new_run_secret(found: SeedFile, allow_weak: bool) -> None:
    """Refuse to start a new run on a secret that can be guessed or searched, unless ``allow_weak`` (tests)."""
    if allow_weak:
        return
    if found.seed < WEAK_SEED_LIMIT:
        raise GalleryError(f"seed file {found.path} holds a seed below 2^32 (a typed number, which anyone can "
                           f"guess and then regenerate every image's noise); {NEW_SECRET_HINT}, or pass "
                           f"--allow-weak-seed (for tests only)")
    if found.contract == 1:
        raise GalleryError(f"seed file {found.path} holds a 64-bit secret (the format before RNG contract 2): it "
                           f"can still --resume the runs it started, but a new run needs a 256-bit secret; "
                           f"{NEW_SECRET_HINT}, or pass --allow-weak-seed to run under contract 1 (for tests only)")
