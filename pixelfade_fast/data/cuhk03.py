"""CUHK03 reader (Li et al., CVPR 2014) for a folder of detected crops named <pid>_<k>.jpg."""
from __future__ import annotations

import re
from pathlib import Path

from .records import ReIDSplit, Record, list_images, require_dir, require_records

CUHK03_LAYOUT = (
    "<root>/detected/ (or <root> itself) holding, at any depth, crops named <pid>_<k>.jpg "
    "(e.g. 0000_07.jpg) where k = 0..4 is camera view A and k = 5..9 view B"
)
_NAME = re.compile(r"^(\d+)_(\d+)\.\w+$")


def parse_cuhk03_name(name: str) -> tuple[int, int]:
    """(pid, camid) of a CUHK03 crop name '<pid>_<k>.jpg': camid 0 (view A) for k < 5, 1 (view B) for k >= 5."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"image name {name!r} is not a CUHK03 crop name <pid>_<k>.<ext> (e.g. 0000_07.jpg)")
    k = int(match.group(2))
    if k > 9:
        raise ValueError(f"image name {name!r}: CUHK03 image index k must be 0..9, got {k}")
    return int(match.group(1)), 0 if k < 5 else 1


def read_cuhk03(root: str | Path, num_train_ids: int = 767) -> ReIDSplit:
    """Read CUHK03 detected crops with a deterministic identity split.

    Protocol used here (a simple fixed variant of the 767/700 split, not the official index files of
    Zhong et al. 2017): the identities sorted by pid are split into the first `num_train_ids` (train,
    all images) and the rest (test). Query = every view-A image (k < 5) of a test identity, gallery =
    every view-B image (k >= 5) of a test identity, so each query is matched across the two views.
    """
    root = require_dir(Path(root), "CUHK03", CUHK03_LAYOUT)
    folder = root / "detected" if (root / "detected").is_dir() else root
    records = []
    for path in list_images(folder, recursive=True):
        pid, camid = parse_cuhk03_name(path.name)
        records.append(Record(str(path), pid, camid))
    require_records(records, folder, "CUHK03", CUHK03_LAYOUT)

    pids = sorted({r.pid for r in records})
    if not 0 < num_train_ids < len(pids):
        raise ValueError(
            f"num_train_ids must be between 1 and {len(pids) - 1} (the folder holds {len(pids)} identities), "
            f"got {num_train_ids}"
        )
    train_ids = set(pids[:num_train_ids])
    test = [r for r in records if r.pid not in train_ids]
    return ReIDSplit(
        train=[r for r in records if r.pid in train_ids],
        query=[r for r in test if r.camid == 0],
        gallery=[r for r in test if r.camid == 1],
    )
