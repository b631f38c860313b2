"""Generic reader: a folder of images plus a CSV file that labels them."""
from __future__ import annotations

import csv
from pathlib import Path

from .records import ReIDSplit, Record, require_dir, require_file, require_records

CSV_LAYOUT = (
    "a CSV file with header 'path,pid,camid,split' (split is train, query or gallery; camid 0-based; "
    "path relative to the image root, which defaults to the CSV file's folder)"
)
_COLUMNS = ("path", "pid", "camid", "split")


def _as_int(value: str, column: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: column {column!r} must be an integer, got {value!r}") from None


def read_csv_dataset(csv_file: str | Path, image_root: str | Path | None = None) -> ReIDSplit:
    """Read records listed in `csv_file` (columns path, pid, camid, split; extra columns are ignored).

    Relative paths are joined to `image_root` (default: the CSV's folder); absolute paths are kept.
    The query and gallery must not be empty; train may be (a test-only dataset).
    """
    csv_file = require_file(Path(csv_file), "CSV dataset", CSV_LAYOUT)
    root = require_dir(Path(image_root) if image_root is not None else csv_file.parent, "CSV dataset", CSV_LAYOUT)
    split = ReIDSplit()
    with csv_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_file}: missing column(s) {missing}; expected {CSV_LAYOUT}")
        for line, row in enumerate(reader, start=2):
            where = f"{csv_file}:{line}"
            part = row["split"].strip().lower()
            if part not in ("train", "query", "gallery"):
                raise ValueError(f"{where}: split must be train, query or gallery, got {row['split']!r}")
            camid = _as_int(row["camid"], "camid", where)
            if camid < 0:
                raise ValueError(f"{where}: camid must be >= 0 (0-based), got {camid}")
            path = Path(row["path"].strip())
            record = Record(str(path if path.is_absolute() else root / path), _as_int(row["pid"], "pid", where), camid)
            getattr(split, part).append(record)
    require_records(split.query, csv_file, "CSV dataset (query rows)", CSV_LAYOUT)
    require_records(split.gallery, csv_file, "CSV dataset (gallery rows)", CSV_LAYOUT)
    return split
