"""bench/bench_storage_formats.py: the pipeline resize it measures, and the report tables it prints from its CSV."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_storage_formats import BENCH, markdown_tables, resized  # noqa: E402
from common import measurement, write_measurements  # noqa: E402


def test_resize_keeps_the_size_and_the_8_bit_grid_and_changes_the_pixels():
    pixels = torch.rand(2, 3, 32, 16, generator=torch.Generator().manual_seed(0))
    out = resized(pixels)
    assert out.shape == pixels.shape and torch.equal(out, torch.round(out * 255) / 255)
    assert not torch.allclose(out, pixels, atol=1 / 255)


def test_tables_show_each_variant_and_pipeline_from_the_csv(tmp_path):
    cpu = torch.device("cpu")
    rows = []
    for name, size, met in (("png", 98000.0, 1.0), ("jpeg q90 protected for storage", 27000.0, 0.5)):
        rows.append(measurement(BENCH, "case", name, "bytes_per_image", "B", size, device=cpu, x_name="pipeline",
                                x_value="as stored"))
        for pipeline in ("as stored", "resized"):
            for metric, value in (("met_epsilon", met), ("pp_map_kept", 0.97), ("op_map_kept", 0.93)):
                rows.append(measurement(BENCH, "case", name, metric, "fraction", value, device=cpu,
                                        x_name="pipeline", x_value=pipeline))
    rows.append(measurement(BENCH, "case", "jpeg q90 protected for storage", "fallback_steps_rate", "fraction", 0.25,
                            device=cpu, x_name="pipeline", x_value="as stored"))
    rows.append(measurement(BENCH, "case", "jpeg q90 protected for storage", "quality_raised_rate", "fraction", 0.0,
                            device=cpu, x_name="pipeline", x_value="as stored"))
    rows.append(measurement(BENCH, "case", "jpeg q90 protected for storage", "cost_vs_png", "x", [0.7, 0.8],
                            device=cpu))
    path = tmp_path / "storage.csv"
    write_measurements(path, rows)
    text = markdown_tables(path)
    assert "| png | 98,000 | 100.0% | 0.970 | 0.930 | – |" in text
    assert "| jpeg q90 protected for storage | 27,000 | 50.0% | 0.970 | 0.930 | 25% / 0% |" in text
    assert "| png | resized | 100.0% |" in text and "jpeg q90 protected for storage / png, interleaved: 0.75x" in text
