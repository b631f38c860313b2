"""Schedules, step by step on hand-made loss sequences."""
import pytest
import torch

from pixelfade_fast import FadeConfig, Schedule
from pixelfade_fast import reference as R
from pixelfade_fast.schedules import BACKTRACK_GROW, BACKTRACK_SHRINK

EPS = 0.03


def run(schedule_cfg: FadeConfig, losses: list[list[float]]):
    """Flags for each step of a loss sequence (one row of per-image losses per step)."""
    schedule = Schedule(schedule_cfg, len(losses[0]), torch.device("cpu"))
    return [schedule.step_flags(torch.tensor(row)) for row in losses]


def test_paper_init_replaces_every_element_exactly_once():
    cfg = FadeConfig(steps=12, init_steps=5, final_steps=2, num_masks=5)
    flags = run(cfg, [[1.0, 0.0, 0.5]] * cfg.init_steps)
    keys = R.derive_keys(3, [0, 1, 2])
    ids = R.fade_mask_ids(keys, (3, 9, 5), cfg.num_masks, False).to(torch.int32)
    replaced = torch.zeros_like(ids)
    for f in flags:
        assert f.do_co.all() and f.do_pro.all()
        replaced += (ids == f.mask_idx.reshape(-1, 1, 1, 1)) & f.do_pro.reshape(-1, 1, 1, 1)
    assert torch.equal(replaced, torch.ones_like(replaced))


def test_paper_main_phase_decides_per_image():
    cfg = FadeConfig(steps=10, init_steps=1, final_steps=1, num_masks=3, co_step="fixed")  # β: tested below
    losses = [[1.0, 1.0, 1.0], [0.1, 0.01, EPS], [0.01, 0.01, 0.02], [0.5, 0.001, 0.04]]
    flags = run(cfg, losses)
    assert flags[1].do_co.tolist() == [True, False, True]  # L >= ε means CO (ε itself included)
    assert flags[1].do_pro.tolist() == [False, True, False]
    assert flags[2].do_pro.tolist() == [True, True, True]
    assert flags[3].do_co.tolist() == [True, False, True]
    # the mask cursor advances only where a PRO ran: init PRO for all, then per image
    assert [f.mask_idx.tolist() for f in flags] == [[0, 0, 0], [1, 1, 1], [1, 2, 1], [2, 0, 2]]
    assert all(f.beta.tolist() == pytest.approx([cfg.beta] * 3) for f in flags)


def test_paper_final_steps_never_replace():
    cfg = FadeConfig(steps=8, init_steps=2, final_steps=3)
    flags = run(cfg, [[0.0, 0.001]] * cfg.steps)  # always below ε: the main phase would replace every step
    for t, f in enumerate(flags):
        if t >= cfg.steps - cfg.final_steps:
            assert not f.do_pro.any() and f.do_co.all()
        else:
            assert f.do_pro.all()


def test_paper_decision_of_one_image_never_leaks_into_another():
    cfg = FadeConfig(steps=30, init_steps=5, final_steps=5)
    generator = torch.Generator().manual_seed(0)
    losses = (torch.rand(cfg.steps, 4, generator=generator) * 2 * EPS).tolist()
    changed = [[1.0 - row[0]] + row[1:] for row in losses]  # image 0 gets a different loss history
    for a, b in zip(run(cfg, losses), run(cfg, changed)):
        assert torch.equal(a.do_co[1:], b.do_co[1:]) and torch.equal(a.do_pro[1:], b.do_pro[1:])
        assert torch.equal(a.mask_idx[1:], b.mask_idx[1:])


def test_finish_steps_run_co_only_on_images_still_above_epsilon():
    cfg = FadeConfig(steps=6, init_steps=1, final_steps=1, finish_steps=3)
    flags = run(cfg, [[0.5, 0.5]] * 6 + [[0.5, 0.01], [0.01, 0.5], [0.5, 0.5]])
    assert [f.do_co.tolist() for f in flags[6:]] == [[True, False], [False, True], [True, True]]
    assert not any(f.do_pro.any() for f in flags[6:])


def test_released_schedule_is_one_decision_per_batch():
    cfg = FadeConfig(steps=12, init_steps=2, final_steps=5, num_masks=5, schedule="released")
    losses = [[0.5, 0.5], [0.0, 0.0], [0.0, 0.01], [0.05, 0.0], [0.02, 0.03], [0.0, 0.0],
              [0.0, 0.0], [0.0, 0.0], [0.5, 0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    flags = run(cfg, losses)
    for t, (row, f) in enumerate(zip(losses, flags)):
        satisfied = sum(row) / 2 < EPS and t < cfg.steps - cfg.final_steps
        assert f.do_co.all()
        assert f.do_pro.tolist() == [satisfied or t < cfg.init_steps] * 2
        assert f.beta.tolist() == pytest.approx([cfg.beta if satisfied else cfg.beta_unsat] * 2)
        assert f.mask_idx.tolist() == [t % cfg.num_masks] * 2
    # by hand: warm-up replaces at t < 2; the mean is below ε at t = 1..7 and 9..11, but t >= 7 never replaces
    assert [bool(f.do_pro[0]) for f in flags] == [True] * 7 + [False] * 5
    unsat, sat = pytest.approx(cfg.beta_unsat), pytest.approx(cfg.beta)
    assert [float(f.beta[1]) for f in flags] == [unsat] + [sat] * 6 + [unsat] * 5


def test_each_image_has_its_own_epsilon():
    cfg = FadeConfig(steps=4, init_steps=1, final_steps=1)
    schedule = Schedule(cfg, 3, torch.device("cpu"))
    schedule.reset(torch.tensor([0.1, 0.01, 1.0]))
    schedule.step_flags(torch.zeros(3))  # init
    flags = schedule.step_flags(torch.tensor([0.05, 0.05, 0.05]))  # main: above ε for the second image only
    assert flags.do_co.tolist() == [False, True, False]
    target = torch.tensor([[1.0, 3.0], [2.0, 2.0]])  # mean squared features 5 and 4
    assert FadeConfig(epsilon=0.01).epsilon_of(target).tolist() == pytest.approx([0.05, 0.04])
    assert FadeConfig().epsilon_of(target).tolist() == pytest.approx([0.15, 0.12])  # the default: relative 0.03
    absolute = FadeConfig(epsilon_scale="absolute")
    assert absolute.epsilon_of(target).tolist() == pytest.approx([0.03, 0.03])
    assert FadeConfig().met_epsilon_rate(torch.tensor([0.14, 0.13]), target) == pytest.approx(0.5)  # ε [0.15, 0.12]
    # relative ε scales with the loss when the features are scaled: which images meet it does not change
    scaled = FadeConfig().epsilon_of(10 * target) / FadeConfig().epsilon_of(target)
    assert scaled.tolist() == pytest.approx([100.0, 100.0])


def test_backtracking_shrinks_beta_after_a_rise_and_grows_it_up_to_beta_max():
    shrink, grow, cap = BACKTRACK_SHRINK, BACKTRACK_GROW, 1.12
    assert 0 < shrink < 1 < grow and grow ** 2 < cap < grow ** 3
    cfg = FadeConfig(steps=7, init_steps=1, final_steps=3, epsilon=0.1, beta=0.01, beta_max_factor=cap)
    assert cfg.co_step == "backtrack"
    schedule = Schedule(cfg, 2, torch.device("cpu"))
    # t=0 init; t=1..3 main; t=4..6 final. Image 0 stays above ε: its loss rises twice, then falls three times.
    # Image 1 falls below ε at t=2 (a PRO step: fixed β, and not judged), rises above it at t=3, then falls.
    losses = [[0.5, 0.5], [0.4, 0.4], [0.6, 0.05], [0.7, 0.3], [0.5, 0.2], [0.4, 0.15], [0.3, 0.12]]
    flags = [schedule.step_flags(torch.tensor(row)) for row in losses]
    betas = [f.beta.tolist() for f in flags]
    assert [f.do_pro.tolist() for f in flags[1:4]] == [[False, False], [False, True], [False, False]]
    assert betas[0] == pytest.approx([0.01, 0.01])  # init (CO + PRO): β
    assert betas[1] == pytest.approx([0.01, 0.01])  # first CO-only step: nothing to judge yet
    assert betas[2] == pytest.approx([0.01 * shrink, 0.01])  # image 0 rose: shrunk; image 1 replaces: β
    assert betas[3] == pytest.approx([0.01 * shrink ** 2, 0.01 * grow])  # image 1: judged by its t=1 step (fell)
    assert betas[4] == pytest.approx([0.01 * shrink ** 2 * grow, 0.01 * grow ** 2])  # fell: grown
    assert betas[5] == pytest.approx([0.01 * shrink ** 2 * grow ** 2, 0.01 * cap])  # image 1 capped at the max
    assert betas[6] == pytest.approx([0.01 * shrink ** 2 * grow ** 3, 0.01 * cap])
    fixed = Schedule(FadeConfig(steps=7, init_steps=1, final_steps=3, epsilon=0.1, co_step="fixed"), 2,
                     torch.device("cpu"))
    assert all(fixed.step_flags(torch.tensor(row)).beta.tolist() == pytest.approx([0.01, 0.01]) for row in losses)


@pytest.mark.parametrize("tol", [FadeConfig().rise_tolerance, 0.3])
def test_backtracking_tolerates_a_small_rise_and_shrinks_after_a_larger_one(tol):
    # Momentum makes the loss rise a little now and then at a good step size: a rise within the tolerance grows β_i.
    assert FadeConfig().rise_tolerance == 0.05
    cfg = FadeConfig(steps=4, init_steps=1, final_steps=3, epsilon=0.01, beta=0.01, rise_tolerance=tol)
    schedule = Schedule(cfg, 2, torch.device("cpu"))
    small, large = 1.0 + 0.5 * tol, 1.0 + 2.0 * tol
    losses = [[1.0, 1.0], [1.0, 1.0], [small, large]]
    betas = [schedule.step_flags(torch.tensor(row)).beta.tolist() for row in losses]
    assert betas[2] == pytest.approx([0.01 * BACKTRACK_GROW, 0.01 * BACKTRACK_SHRINK])


def test_a_step_size_cap_below_beta_is_refused():
    with pytest.raises(ValueError, match="beta_max_factor"):
        FadeConfig(beta_max_factor=0.5)

@pytest.mark.parametrize("value", [-0.01, 1.0, float("nan"), True, "0.1"])
def test_a_rise_tolerance_outside_zero_to_one_is_refused(value):
    with pytest.raises(ValueError, match="rise_tolerance"):
        FadeConfig(rise_tolerance=value)


def test_the_rise_tolerance_is_part_of_the_config_hash():
    assert FadeConfig(rise_tolerance=0.1).config_hash() != FadeConfig().config_hash()
