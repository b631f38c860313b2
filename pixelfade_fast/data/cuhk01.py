"""CUHK01 reader (Li, Zhao, Wang, ACCV 2012): campus/<pid4><idx3>.png, two camera views, 4 images per id."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .records import ReIDSplit, Record, list_images, require_dir, require_records

CUHK01_LAYOUT = (
    "<root>/campus/ holding <pid:4 digits><idx:3 digits>.png, e.g. 0001001.png; "
    "idx 001-002 are camera view A, 003-004 view B"
)
_NAME = re.compile(r"^(\d{4})(\d{3})\.\w+$")


def parse_cuhk01_name(name: str) -> tuple[int, int, int]:
    """(pid, idx, camid) of a CUHK01 name such as '0001003.png': camid 0 for idx 1-2, 1 for idx 3-4."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"image name {name!r} is not a CUHK01 name <pid:4 digits><idx:3 digits>.png "
                         "(e.g. 0001003.png)")
    idx = int(match.group(2))
    if not 1 <= idx <= 4:
        raise ValueError(f"image name {name!r}: CUHK01 image index must be 001..004, got {idx:03d}")
    return int(match.group(1)), idx, 0 if idx <= 2 else 1


def read_cuhk01(root: str | Path, num_train_ids: int = 485, seed: int = 0) -> ReIDSplit:
    """Read CUHK01 with a seeded random identity split (485 train / 486 test on the full release).

    The sorted identities are permuted with numpy's default_rng(seed); the first `num_train_ids` train
    (all 4 images each). Query = one camera-A image per test identity (idx 1, or the first view-A image
    present), gallery = the camera-B images (idx 3-4) of the test identities.
    """
    root = require_dir(Path(root), "CUHK01", CUHK01_LAYOUT)
    folder = require_dir(root / "campus", "CUHK01", CUHK01_LAYOUT)
    parsed = []
    for path in list_images(folder):
        pid, idx, camid = parse_cuhk01_name(path.name)
        parsed.append((idx, Record(str(path), pid, camid)))
    require_records([r for _, r in parsed], folder, "CUHK01", CUHK01_LAYOUT)

    pids = sorted({r.pid for _, r in parsed})
    if not 0 < num_train_ids < len(pids):
        raise ValueError(
            f"num_train_ids must be between 1 and {len(pids) - 1} (the folder holds {len(pids)} identities), "
            f"got {num_train_ids}"
        )
    order = np.random.default_rng(seed).permutation(len(pids))
    train_ids = {pids[i] for i in order[:num_train_ids]}

    split = ReIDSplit()
    queried: set[int] = set()
    for _, record in sorted(parsed, key=lambda item: (item[1].pid, item[0])):
        if record.pid in train_ids:
            split.train.append(record)
        elif record.camid == 1:
            split.gallery.append(record)
        elif record.pid not in queried:
            split.query.append(record)
            queried.add(record.pid)
    return split
