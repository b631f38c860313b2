"""Market-1501 reader (Zheng et al., ICCV 2015), also used for SynthPed, which is written in the same layout."""
from __future__ import annotations

import re
from pathlib import Path

from .records import ReIDSplit, Record, list_images, require_dir, require_records

MARKET_LAYOUT = (
    "<root>/bounding_box_train/, <root>/query/ and <root>/bounding_box_test/ holding images named "
    "<pid>_c<cam>s<seq>_<frame>_<box>.jpg, e.g. 0002_c1s1_000451_03.jpg (pid -1 = junk, 0 = distractor)"
)
_NAME = re.compile(r"^(-?\d+)_c(\d+)s\d+_\d+_\d+\.\w+$")


def parse_market_name(name: str) -> tuple[int, int]:
    """(pid, 0-based camid) of a Market-1501 file name such as '0002_c1s1_000451_03.jpg'."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"image name {name!r} is not a Market-1501 name <pid>_c<cam>s<seq>_<frame>_<box>.<ext> "
            "(e.g. 0002_c1s1_000451_03.jpg)"
        )
    cam = int(match.group(2))
    if cam < 1:
        raise ValueError(f"image name {name!r}: camera numbers start at c1, got c{cam}")
    return int(match.group(1)), cam - 1


def _read_folder(folder: Path, drop_junk: bool) -> list[Record]:
    records = []
    for path in list_images(require_dir(folder, "Market-1501", MARKET_LAYOUT)):
        pid, camid = parse_market_name(path.name)
        if drop_junk and pid == -1:
            continue
        records.append(Record(str(path), pid, camid))
    return require_records(records, folder, "Market-1501", MARKET_LAYOUT)


def read_market1501(root: str | Path) -> ReIDSplit:
    """Read a Market-1501-layout dataset.

    Junk images (pid −1) are dropped from train and query; the gallery keeps both junk (−1) and
    distractors (pid 0) because the evaluation protocol handles them (junk ignored, distractors ranked).
    Camera ids are 0-based (c1 → 0).
    """
    root = require_dir(Path(root), "Market-1501", MARKET_LAYOUT)
    return ReIDSplit(
        train=_read_folder(root / "bounding_box_train", drop_junk=True),
        query=_read_folder(root / "query", drop_junk=True),
        gallery=_read_folder(root / "bounding_box_test", drop_junk=False),
    )
