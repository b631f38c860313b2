"""The dataset layouts ``pixelfade evaluate --data`` reads: one registry from name to reader.

Adding a layout is one reader (root -> ReIDSplit) and one ``register_dataset`` call; the command's ``--data``
choices and help read this registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..registry import Registry
from .csv_folder import read_csv_dataset
from .cuhk01 import read_cuhk01
from .cuhk03 import read_cuhk03
from .market1501 import read_market1501
from .msmt17 import read_msmt17
from .records import DatasetNotFoundError, ReIDSplit

SHOWN_MISSING = 3  # missing files named in the message; the rest are counted


@dataclass(frozen=True)
class Dataset:
    """A dataset layout: its reader and what ``root`` is for it."""

    name: str
    read: Callable[..., ReIDSplit]  # read(root) -> ReIDSplit; read(root, image_root=...) when takes_image_root
    description: str
    takes_image_root: bool = False  # the reader joins relative image paths to a separate image folder


DATASETS: Registry[Dataset] = Registry("dataset layout")
register_dataset = DATASETS.register  # (dataset) -> dataset; its name must be new


def read_dataset(name: str, root: str | Path, *, image_root: str | Path | None = None) -> ReIDSplit:
    """The split of the dataset at ``root`` read as layout ``name``, every listed image checked to exist (before
    anything is loaded): DatasetNotFoundError naming the first missing ones and how many there are."""
    dataset = DATASETS[name]  # names the layouts when there is none of that name
    if image_root is not None and not dataset.takes_image_root:
        raise ValueError(f"the {name} layout has no separate image root (only "
                         f"{', '.join(n for n, d in DATASETS.items() if d.takes_image_root)} have one)")
    split = dataset.read(root, image_root=image_root) if dataset.takes_image_root else dataset.read(root)
    check_images_exist(split, f"{name} dataset {root}")
    return split


def check_images_exist(split: ReIDSplit, where: str) -> None:
    """DatasetNotFoundError when an image that ``split`` lists is not a file (names the first few, counts all)."""
    listed = [record.path for records in (split.train, split.query, split.gallery) for record in records]
    missing = [path for path in listed if not Path(path).is_file()]
    if missing:
        shown = ", ".join(missing[:SHOWN_MISSING]) + (", ..." if len(missing) > SHOWN_MISSING else "")
        raise DatasetNotFoundError(f"{where}: {len(missing)} of the {len(listed)} listed images are not files: "
                                   f"{shown}")


def limit_test_ids(split: ReIDSplit, max_ids: int | None, seed: int) -> ReIDSplit:
    """The split with its query/gallery reduced to ``max_ids`` test identities (seeded choice; distractors kept)."""
    if max_ids is None:
        return split
    pids = sorted(split.pids("query"))
    chosen = set(pids) if len(pids) <= max_ids else {
        pids[i] for i in torch.randperm(len(pids), generator=torch.Generator().manual_seed(seed))[:max_ids].tolist()}
    return type(split)(train=split.train, query=[r for r in split.query if r.pid in chosen],
                       gallery=[r for r in split.gallery if r.pid in chosen or r.pid <= 0])


register_dataset(Dataset("market1501", read_market1501, "Market-1501: bounding_box_train/, query/, "
                                                         "bounding_box_test/ under the root"))
register_dataset(Dataset("synthped", read_market1501, "a SynthPed root (`pixelfade synthped`), Market-1501 layout"))
register_dataset(Dataset("cuhk01", read_cuhk01, "CUHK01: campus/ under the root"))
register_dataset(Dataset("cuhk03", read_cuhk03, "CUHK03: detected/ (or the root itself) holding <pid>_<k>.jpg"))
register_dataset(Dataset("msmt17", read_msmt17, "MSMT17: list_*.txt and the train/test image folders"))
register_dataset(Dataset("csv", read_csv_dataset, "the root is a CSV file with columns path,pid,camid,split; "
                                                  "relative paths are read from the image root (default: its folder)",
                         takes_image_root=True))
