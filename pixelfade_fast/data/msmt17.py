"""MSMT17 reader (Wei et al., CVPR 2018): images listed, with their pid, in list files."""
from __future__ import annotations

import re
from pathlib import Path

from .records import DatasetNotFoundError, ReIDSplit, Record, require_dir, require_file, require_records

MSMT_LAYOUT = (
    "<root>/list_train.txt, list_val.txt, list_query.txt, list_gallery.txt with lines '<relpath> <pid>'; "
    "train/val paths relative to <root>/train (or mask_train_v2), query/gallery paths relative to "
    "<root>/test (or mask_test_v2); file names <pid>_<index>_<cam>_..., e.g. 0000_000_01_0303morning_0015_0.jpg"
)
_CAM_FIELD = re.compile(r"^c?(\d+)$")


def parse_msmt_camid(relpath: str) -> int:
    """0-based camera id of an MSMT17 image path: the third '_' field of the file name ('01' or 'c01')."""
    fields = Path(relpath).name.split("_")
    match = _CAM_FIELD.match(fields[2]) if len(fields) > 2 else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"MSMT17 image name {Path(relpath).name!r} has no camera field: expected "
            "<pid>_<index>_<cam>_..., e.g. 0000_000_01_0303morning_0015_0.jpg (cameras 01..15)"
        )
    return int(match.group(1)) - 1


def _image_dir(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DatasetNotFoundError(
        f"MSMT17: none of the folders {names} exists in {str(root)!r}. Expected layout: {MSMT_LAYOUT}")


def _read_list(list_file: Path, image_dir: Path) -> list[Record]:
    records = []
    lines = require_file(list_file, "MSMT17", MSMT_LAYOUT).read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{list_file}:{number}: expected '<relpath> <pid>', got {line!r}")
        records.append(Record(str(image_dir / parts[0]), int(parts[1]), parse_msmt_camid(parts[0])))
    return require_records(records, list_file, "MSMT17", MSMT_LAYOUT)


def read_msmt17(root: str | Path, include_val: bool = True) -> ReIDSplit:
    """Read MSMT17 (V1 or V2 folder names) from its list files.

    The training set is list_train plus list_val (the usual practice) unless include_val=False.
    Pids are those of the list files (train and test identities are numbered separately from 0).
    """
    root = require_dir(Path(root), "MSMT17", MSMT_LAYOUT)
    train_dir = _image_dir(root, ("train", "mask_train_v2"))
    test_dir = _image_dir(root, ("test", "mask_test_v2"))
    train = _read_list(root / "list_train.txt", train_dir)
    if include_val:
        train += _read_list(root / "list_val.txt", train_dir)
    return ReIDSplit(
        train=train,
        query=_read_list(root / "list_query.txt", test_dir),
        gallery=_read_list(root / "list_gallery.txt", test_dir),
    )
