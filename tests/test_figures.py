"""matplotlib figures (files written, labels inside the figure and not on top of each other) and the Fig. 5
sweep (its CSV schema, one row per value, defaults flagged, configs reused)."""
import csv
import itertools

import pytest
import torch
from PIL import Image

from pixelfade_fast.config import FadeConfig
from pixelfade_fast.evaluation import figures
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.figures import ad_recovery_figure, parameter_sweep_figure, privacy_utility_figure
from pixelfade_fast.evaluation.sweep import (SWEEP_COLUMNS, SWEEP_PARAMETERS, SweepData, check_values, read_sweep_csv,
                                             run_sweep, write_sweep_csv)
from engine_models import SmallReIDNet, smooth_images

# A tiny results dict: several methods bunched together, as PixelFade and its variants are on a real run.
POINTS = {"pixelfade": (0.190, 0.356), "pixelfade_released": (0.191, 0.341), "avih": (0.184, 0.332),
          "objective_zeros": (0.193, 0.352), "mosaic": (0.311, 0.095), "blur": (0.350, 0.089)}
AD = {"pixelfade": 14.3, "pixelfade_released": 39.5, "avih": 159.3, "objective_zeros": 239.0, "mosaic": 479.2,
      "blur": 280.9}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def _label_boxes(monkeypatch):
    """Records the label Text objects of each scatter, to check their extents after drawing."""
    made = []
    real = figures._labelled_scatter

    def recording(axes, points):
        texts = real(axes, points)
        made.append((axes, texts))
        return texts

    monkeypatch.setattr(figures, "_labelled_scatter", recording)
    return made


def _assert_readable(made, path):
    axes, texts = made[-1]
    renderer = axes.figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in texts]
    figure_box = axes.figure.bbox
    for text, box in zip(texts, boxes):
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, f"{text.get_text()} runs off the figure"
        assert figure_box.y0 <= box.y0 and box.y1 <= figure_box.y1, f"{text.get_text()} runs off the figure"
    for (a, box_a), (b, box_b) in itertools.combinations(zip(texts, boxes), 2):
        assert not box_a.overlaps(box_b), f"labels {a.get_text()!r} and {b.get_text()!r} overlap"
    width, height = Image.open(path).size
    assert (width, height) == (round(figure_box.width), round(figure_box.height))
    assert path.stat().st_size > 20_000


def test_privacy_utility_scatter_has_separate_labels(tmp_path, monkeypatch):
    made = _label_boxes(monkeypatch)
    path = privacy_utility_figure(POINTS, tmp_path / "pu.png", floor_ssim=0.187, title="tiny; inconclusive")
    _assert_readable(made, path)
    assert [t.get_text() for t in made[-1][1]] == list(POINTS)


def test_ad_figure_is_log_scaled_and_readable(tmp_path, monkeypatch):
    made = _label_boxes(monkeypatch)
    points = {name: (AD[name], ssim) for name, (ssim, _) in POINTS.items()}
    path = ad_recovery_figure(points, tmp_path / "ad.png", floor_ssim=0.187, sample_size=24576)
    _assert_readable(made, path)
    assert made[-1][0].get_xscale() == "log"
    with pytest.raises(ValueError, match="A² must be positive"):
        ad_recovery_figure({"x": (0.0, 0.2)}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="at least one method"):
        privacy_utility_figure({}, tmp_path / "none.png")


def _rows():
    rows = []
    for name, values in {"steps": (20, 100), "beta": (0.005, 0.01), "epsilon": (0.03, 0.05),
                         "num_masks": (2, 5)}.items():
        for i, value in enumerate(values):
            rows.append(dict(parameter=name, value=value, is_default=value == getattr(FadeConfig(), name),
                             map=0.4 + 0.1 * i, rank1=0.3, recovery_ssim=0.2 - 0.01 * i, recovery_ssim_attacker="unet",
                             unet_ssim=0.2, recovery_psnr=12.0, recovery_psnr_attacker="mean", floor_ssim=0.19,
                             floor_psnr=12.5, met_epsilon_rate=1.0, protect_s=1.0, config_hash="x"))
    return rows


def test_sweep_figure_from_the_csv(tmp_path):
    path = write_sweep_csv(_rows(), tmp_path / "sweep.csv")
    with open(path, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == SWEEP_COLUMNS
    rows = read_sweep_csv(path)
    figure = parameter_sweep_figure(rows, tmp_path / "fig5.png", title="tiny")
    assert figure.stat().st_size > 50_000 and Image.open(figure).size == (1440, 1020)
    with pytest.raises(ValueError, match=r"lack the parameters \['num_masks'\]"):
        parameter_sweep_figure([r for r in rows if r["parameter"] != "num_masks"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="lacks columns"):
        write_sweep_csv([{"parameter": "steps"}], tmp_path / "bad.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="is not a sweep CSV"):
        read_sweep_csv(tmp_path / "other.csv")


def test_sweep_values_are_checked():
    with pytest.raises(ValueError, match="unknown sweep parameters"):
        check_values({"alpha": (0.5,)}, FadeConfig())
    with pytest.raises(ValueError, match="FadeConfig.num_masks"):
        check_values({"num_masks": (0,)}, FadeConfig())
    with pytest.raises(ValueError, match="has no values"):
        check_values({"beta": ()}, FadeConfig())


def test_sweep_runs_each_config_once_and_flags_the_defaults(tmp_path, monkeypatch):
    images = smooth_images(20, 32, 16, seed=8)
    # six identities: query = their camera-0 image, gallery = their camera-1 image (a shifted copy)
    query = images[:6]
    gallery = torch.roll(query, shifts=1, dims=3) * 0.9 + 0.05
    data = SweepData(test=torch.cat([query, gallery]), num_query=6, pids=list(range(6)) * 2,
                     camids=[0] * 6 + [1] * 6, train=images[6:])
    base = FadeConfig(steps=12, init_steps=2, final_steps=2, finish_steps=0)
    calls = []
    from pixelfade_fast.evaluation import baselines  # the sweep protects through the suite's "pixelfade" method
    real = baselines.pixelfade
    monkeypatch.setattr(baselines, "pixelfade", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    values = {"steps": (6, 12), "beta": (0.01, 0.02), "epsilon": (0.03,), "num_masks": (5,)}
    rows = run_sweep(SmallReIDNet(), data, values, attack_preset("tiny", epochs=1, width=8, depth=3), base=base,
                     log=lambda line: None)
    assert [(r["parameter"], r["value"]) for r in rows] == [(n, v) for n, vs in values.items() for v in vs]
    assert [r["is_default"] for r in rows] == [False, True, True, False, True, True]
    assert len(calls) == 2 * 3  # test and train for base, steps=6 and beta=0.02: the defaults run once
    defaults = [r for r in rows if r["is_default"]]
    assert len({r["config_hash"] for r in defaults}) == 1 and defaults[0]["config_hash"] == base.config_hash()
    for row in rows:
        assert set(SWEEP_COLUMNS) <= set(row) and 0 <= row["map"] <= 1 and 0 <= row["met_epsilon_rate"] <= 1
        assert row["recovery_ssim"] >= row["unet_ssim"] and row["recovery_ssim_attacker"] in ("unet", "protected",
                                                                                             "mean")
    path = write_sweep_csv(rows, tmp_path / "sweep.csv")
    assert len(read_sweep_csv(path)) == len(rows)
    assert set(SWEEP_PARAMETERS) == set(values)


def test_the_recoveries_figure_shows_each_attackers_images_in_its_panel(tmp_path):
    white, black = torch.ones(3, 3, 32, 16), torch.zeros(3, 3, 32, 16)
    rows = {"pixelfade": {"U-Net": (black, "13.00 / 0.300", True), "authors": (white, "12.00 / 0.200", False)},
            "blur": {"U-Net": (white, "20.00 / 0.600", False)}}
    path = figures.recoveries_figure(rows, tmp_path / "recoveries.png", title="t")
    darkest = Image.open(path).convert("L").getextrema()[0]
    assert path.stat().st_size > 5_000 and darkest == 0  # the black strip is drawn
    with pytest.raises(ValueError, match="at least one method"):
        figures.recoveries_figure({}, tmp_path / "none.png")


def test_every_row_of_the_recoveries_figure_is_labelled_when_its_first_panel_is_empty(tmp_path, monkeypatch):
    # --hide-originals leaves blur's "protected" panel empty; its row must still name the method.
    drawn = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda figure, path: (drawn.append(figure), real_save(figure, path))[1])
    strip = torch.rand(2, 3, 32, 16)
    rows = {"pixelfade": {"protected": (strip, "9.00 / 0.010", False), "U-Net": (strip, "13.00 / 0.300", True)},
            "blur": {"U-Net": (strip, "20.00 / 0.600", True)}}
    figures.recoveries_figure(rows, tmp_path / "recoveries.png")
    labelled = [axes.get_ylabel() for axes in drawn[0].axes if axes.axison and axes.get_ylabel()]
    assert labelled == ["pixelfade", "blur"]
