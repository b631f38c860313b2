"""bench/bench_constraint.py's step count: T plus the finish steps in which each image still took a CO step."""
import sys
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast.engine import StepRecord
from pixelfade_fast.schedules import FINISH
from pixelfade_fast.step_args import StepFlags

from engine_models import SmallReIDNet, smooth_images

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_constraint import StepCounter, run  # noqa: E402


def _record(step: int, do_co: list[bool], rows: list[int] | None) -> StepRecord:
    count = len(do_co)
    flags = StepFlags(torch.tensor(do_co), torch.zeros(count, dtype=torch.bool), torch.full((count,), 0.01),
                      torch.zeros(count, dtype=torch.int32), torch.tensor(FINISH, dtype=torch.int32))
    return StepRecord(step, torch.zeros(count), flags, None if rows is None else torch.tensor(rows))


def test_counter_counts_finish_steps_per_image_through_compaction_and_padding():
    config = pf.FadeConfig(steps=10, init_steps=1, final_steps=1, finish_steps=5)
    counter = StepCounter(4, config)
    counter(_record(3, [True] * 4, None))  # a step of T: already counted in T
    counter(_record(10, [True, False, True, True], None))
    counter(_record(11, [True, True, False, False], [0, 2, 3, 3]))  # compacted; row 3 repeated as padding
    counter(_record(12, [True, True], [2, 2]))  # padding carries its row's own flag
    assert counter.steps.tolist() == [12, 10, 13, 11]


def test_run_reports_steps_within_the_loop_bounds():
    config = pf.FadeConfig(steps=12, init_steps=2, final_steps=2, finish_steps=6)
    outcome = run(SmallReIDNet(), smooth_images(5), config, batch=3, seed=1)
    assert outcome["protected"].shape == (5, 3, 64, 32)
    assert config.steps <= outcome["mean_steps"] <= outcome["max_steps"] <= config.total_steps
    assert 0.0 <= outcome["met_rate"] <= 1.0
