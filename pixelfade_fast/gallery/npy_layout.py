"""A gallery run's images in the authors' ``img_npy/`` layout, the files their ``recovery_attack.py`` trains and
tests its recovery network on.

Their protect script writes, per batch ``k`` of the ``train`` and ``test`` sets, ``clean-<set>-<k>-images.npy``
and ``encry-<set>-<k>-images.npy`` (float32 [B, 3, H, W], the originals and the protected images in the model's
normalised input space), ``<set>-<k>-ids.npy`` (int64 identities) and, for ``test``, ``<set>-<k>-camids.npy``
(int64 0-based camera ids); their attack reads the ``clean-``/``encry-`` pairs in sorted name order. We write the
same files from what a run stored: the originals under IN, resized as the run read them, and the protected
images as OUT holds them (8-bit outputs, which are what an attacker gets), both checked against the manifest's
digests. Images under a top folder ``bounding_box_train`` or ``train`` form the train set, the rest the test set
(``query`` first, as their loader orders it). Ids and camera ids come from Market-1501 names
(``0002_c1s1_000451_03.jpg``: 2 and 0); names of other forms get -1 (their attack reads neither).

The folder is written whole, then renamed into place: a reader sees the old folder or the new one. It is written
after a run ends, from every image the manifest lists as protected, so a resumed run writes the whole gallery's.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..data import load_image, parse_market_name
from ..input_space import InputSpace
from ..atomic_file import default_file_mode
from .content import bytes_digest
from .errors import GalleryError
from .manifest import ManifestEntry
from .run import all_manifests
from .run_record import read_run_record

NPY_FOLDER = "img_npy"
NPY_BATCH = 20  # their loader's batch size (one file per batch; their attack does not depend on it)
TRAIN_FOLDERS = ("bounding_box_train", "train")
QUERY_FOLDER = "query"
_OUR_FILE = re.compile(r"^((clean|encry)-(train|test)-\d+-images|(train|test)-\d+-(ids|camids))\.npy$")


@dataclass
class NpyReport:
    folder: Path
    images: dict[str, int] = field(default_factory=dict)  # per set
    files: int = 0

    def summary(self) -> str:
        counts = ", ".join(f"{count} {name}" for name, count in self.images.items())
        return f"wrote {self.files} files ({counts} images) into {self.folder}"


def check_npy_out(npy_dir: Path) -> None:
    """Before a run: ``npy_dir`` can hold ``img_npy/`` (its parent exists), and an ``img_npy/`` there holds only
    files of this layout (it is replaced whole)."""
    npy_dir = Path(npy_dir)
    if npy_dir.exists() and not npy_dir.is_dir():
        raise GalleryError(f"--npy-out {npy_dir} is a file; name a folder")
    if not npy_dir.exists() and not npy_dir.parent.is_dir():
        raise GalleryError(f"--npy-out {npy_dir}: the folder {npy_dir.parent} does not exist; create it first")
    target = npy_dir / NPY_FOLDER
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if not _OUR_FILE.match(p.name))
        if foreign:
            raise GalleryError(f"{target} holds files that are not of the img_npy layout ({', '.join(foreign[:3])}"
                               f"{' ...' if len(foreign) > 3 else ''}) and would be replaced; choose another "
                               f"--npy-out folder")


def set_of(path: str) -> str:
    """'train' or 'test': the set of an input (its path relative to IN)."""
    return "train" if PurePosixPath(path).parts[0] in TRAIN_FOLDERS else "test"


def _ids(path: str) -> tuple[int, int]:
    try:
        return parse_market_name(PurePosixPath(path).name)
    except ValueError:
        return -1, -1


def _read(folder: Path, relative: str, digest: str | None, what: str, size: tuple[int, int]) -> torch.Tensor:
    try:
        data = (folder / relative).read_bytes()
    except OSError as error:
        raise GalleryError(f"cannot read the {what} {relative}: {error.strerror or error}") from None
    if digest is not None and bytes_digest(data) != digest:
        raise GalleryError(f"the {what} {relative} is not the file the run {'read' if what == 'input' else 'wrote'} "
                           f"(its bytes differ from the manifest's digest); restore it, or run the gallery again")
    return load_image(io.BytesIO(data), size)


def write_img_npy(in_dir: Path, out_dir: Path, npy_dir: Path, *, batch_size: int = NPY_BATCH) -> NpyReport:
    """Write ``npy_dir/img_npy/`` from the gallery run in ``out_dir`` (its originals under ``in_dir``)."""
    in_dir, out_dir, npy_dir = Path(in_dir), Path(out_dir), Path(npy_dir)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    record = read_run_record(out_dir) if out_dir.is_dir() else None
    if record is None:
        raise GalleryError(f"{out_dir} holds no gallery run (run.json); protect a folder into it first")
    check_npy_out(npy_dir)
    entries = [e for manifest in all_manifests(out_dir) for e in manifest.read() if e.status == "protected"]
    if not entries:
        raise GalleryError(f"{out_dir}'s manifest lists no protected image: nothing to write")
    space = InputSpace(tuple(record.mean), tuple(record.std))
    size = tuple(record.input_size)
    sets: dict[str, list[ManifestEntry]] = {}
    for entry in sorted(entries, key=lambda e: (PurePosixPath(e.path).parts[0] != QUERY_FOLDER, e.path)):
        sets.setdefault(set_of(entry.path), []).append(entry)
    npy_dir.mkdir(exist_ok=True)
    _remove_stale(npy_dir)
    staged = Path(tempfile.mkdtemp(dir=npy_dir, prefix=f".{NPY_FOLDER}.", suffix=".tmp"))
    report = NpyReport(npy_dir / NPY_FOLDER)
    try:
        for name, members in sets.items():
            report.images[name] = len(members)
            for index, first in enumerate(range(0, len(members), batch_size)):
                batch = members[first:first + batch_size]
                clean = torch.stack([_read(in_dir, e.path, e.input_digest, "input", size) for e in batch])
                protected = torch.stack([_read(out_dir, e.output, e.output_digest, "output", size) for e in batch])
                ids = np.array([_ids(e.path) for e in batch], dtype=np.int64).reshape(-1, 2)
                arrays = {f"clean-{name}-{index}-images": space.normalise(clean).numpy(),
                          f"encry-{name}-{index}-images": space.normalise(protected).numpy(),
                          f"{name}-{index}-ids": ids[:, 0]}
                if name == "test":
                    arrays[f"{name}-{index}-camids"] = ids[:, 1]
                for stem, array in arrays.items():
                    np.save(staged / f"{stem}.npy", array)
                    report.files += 1
        mode = default_file_mode()
        for path in staged.iterdir():
            os.chmod(path, mode)
        os.chmod(staged, mode | (mode & 0o444) >> 2)  # a folder's x bits where its r bits are
        _swap_in(staged, npy_dir / NPY_FOLDER)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return report


def _swap_in(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``, replacing the folder there (kept until the new one is in place)."""
    with os.scandir(staged) as files:
        for item in files:  # durable before the rename makes them visible
            with open(item.path, "rb") as stream:
                os.fsync(stream.fileno())
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, old / target.name)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale(npy_dir: Path) -> None:
    """Folders an interrupted write left (a staged folder, or the old folder it was replacing)."""
    for path in npy_dir.glob(f".{NPY_FOLDER}.*"):
        if path.is_dir() and path.suffix in (".tmp", ".old"):
            shutil.rmtree(path, ignore_errors=True)
