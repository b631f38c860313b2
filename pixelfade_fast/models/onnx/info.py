"""OnnxInfo: what an ONNX file says about its model, and the metadata keys PixelFade reads and writes.

Metadata (``ModelProto.metadata_props``, string -> string), written by :func:`export_onnx` and read by
:func:`load_onnx`; each value is a JSON list:

- ``input_size``: ``[H, W]``, the image size the model takes (used when the graph's spatial dims are dynamic);
- ``mean`` / ``std``: three per-channel values in pixel units of [0, 1]: the model input is
  ``(pixel - mean) / std``.

We found no Re-ID or tracking toolkit that writes normalisation metadata into its ONNX exports (boxmot's
exporter, boxmot/reid/exporters/onnx_exporter.py, adds none), so for such files mean/std are None and the
caller supplies them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

INPUT_SIZE_KEY = "input_size"
MEAN_KEY = "mean"
STD_KEY = "std"


@dataclass(frozen=True)
class OnnxInfo:
    """Facts about an imported ONNX model.

    input_size: (H, W) from the graph input's static spatial dims, else from the ``input_size`` metadata,
        else None. mean / std: from the metadata (pixel units of [0, 1]), else None. opset: the default-domain
        opset. producer: producer name and version as written by the exporter. feature_dim: the size of the
        output's feature axis when it is static. input_name / output_name: the graph's input and (first)
        output. batch: the input's batch size when the graph fixes it, else None (dynamic batch).
    """

    input_size: tuple[int, int] | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    opset: int
    producer: str
    feature_dim: int | None
    input_name: str
    output_name: str
    batch: int | None


def _json_numbers(metadata: dict[str, str], key: str, count: int, path: str) -> list[float] | None:
    if key not in metadata:
        return None
    try:
        values = json.loads(metadata[key])
        ok = isinstance(values, list) and len(values) == count and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    except json.JSONDecodeError:
        ok = False
    if not ok:
        raise ValueError(f"{path}: metadata {key!r} must be a JSON list of {count} finite numbers, "
                         f"got {metadata[key]!r}")
    return [float(v) for v in values]


def read_metadata(metadata: dict[str, str], path: str):
    """(input_size, mean, std) from metadata_props, each None if absent; a ValueError if malformed."""
    size = _json_numbers(metadata, INPUT_SIZE_KEY, 2, path)
    if size is not None and not all(v.is_integer() and v > 0 for v in size):
        raise ValueError(f"{path}: metadata 'input_size' must be two positive integers, got {size}")
    mean = _json_numbers(metadata, MEAN_KEY, 3, path)
    std = _json_numbers(metadata, STD_KEY, 3, path)
    if std is not None and min(std) <= 0:
        raise ValueError(f"{path}: metadata 'std' must be positive, got {std}")
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and max(abs(v) for v in values) > 1.5:
            raise ValueError(f"{path}: metadata {name!r} = {values} looks like 0-255 pixel units; PixelFade "
                             f"reads mean/std in [0, 1] pixel units (divide by 255)")
    return (None if size is None else (int(size[0]), int(size[1])),
            None if mean is None else tuple(mean), None if std is None else tuple(std))


def write_metadata(model_proto, input_size: tuple[int, int], mean, std) -> None:
    """Set the input_size / mean / std metadata keys of a ModelProto (replacing earlier values)."""
    values = {INPUT_SIZE_KEY: list(input_size), MEAN_KEY: [float(v) for v in mean], STD_KEY: [float(v) for v in std]}
    kept = [(p.key, p.value) for p in model_proto.metadata_props if p.key not in values]
    del model_proto.metadata_props[:]
    for key, value in [*kept, *((k, json.dumps(v)) for k, v in values.items())]:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
