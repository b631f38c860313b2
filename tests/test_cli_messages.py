"""What the command line prints for a mistake: one `error:` line naming the option (not FadeConfig's field),
ranges in words, parse errors in two lines without the usage; exit status 2 and nothing written."""
import argparse
import dataclasses

import pytest
import torch

from pixelfade_fast import FadeConfig, cli
from pixelfade_fast.cli import options as cli_options
from pixelfade_fast.errors import UserError
from pixelfade_fast.schedules import FINAL, FINISH, INIT, MAIN, phase_of_step


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return int(stop.code)


def _protect(tmp_path, *options: str) -> list[str]:
    return ["protect", str(tmp_path / "in"), str(tmp_path / "out"), "--model", "osnet_x0_25", "--device", "cpu",
            "--no-progress", *options]


@pytest.mark.parametrize("options, expected", [
    (["--steps", "1", "--init-steps", "1", "--final-steps", "1"],
     "error: --final-steps must be between 0 and 0, got 1: the init and final steps count inside --steps (1) after "
     "the 1 of --init-steps; raise --steps or lower --final-steps or --init-steps"),
    (["--steps", "3"],
     "error: --init-steps must be between 0 and 3, got 5: the init and final steps count inside --steps (3); "
     "raise --steps or lower --init-steps"),
    (["--steps", "0"], "error: --steps must be at least 1, got 0"),
    (["--epsilon", "0"], "error: --epsilon must be greater than 0.0, got 0.0"),
    (["--alpha", "1"], "error: --alpha must be at least 0.0 and below 1.0, got 1.0"),
    (["--num-masks", "256"], "error: --num-masks must be between 1 and 255, got 256"),
    (["--beta-max-factor", "0.5"], "error: --beta-max-factor must be at least 1.0, got 0.5"),
])
def test_a_bad_setting_names_the_option_in_one_line(tmp_path, capsys, options, expected):
    (tmp_path / "in").mkdir()
    assert _main(_protect(tmp_path, *options)) == 2
    err = capsys.readouterr().err
    assert err == expected + "\n"
    assert not (tmp_path / "out").exists()


def test_the_python_api_names_the_field():
    with pytest.raises(ValueError) as info:
        FadeConfig(steps=1, init_steps=1, final_steps=1)
    assert str(info.value) == (
        "FadeConfig.final_steps must be between 0 and 0, got 1: the init and final steps count inside "
        "FadeConfig.steps (1) after the 1 of FadeConfig.init_steps; raise FadeConfig.steps or lower "
        "FadeConfig.final_steps or FadeConfig.init_steps")
    with pytest.raises(ValueError, match=r"^FadeConfig\.steps must be at least 1, got 0$"):
        FadeConfig(steps=0)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(FadeConfig)])
def test_no_range_message_reads_must_be_in(field):
    """Every field's out-of-range message says its range in words (never "must be in >= 1" or "in [0, 0]")."""
    default = getattr(FadeConfig(), field)
    if isinstance(default, bool) or isinstance(default, str):
        bad = [3]
    else:
        bad = [-1, -0.5, 10 ** 6]
    messages = []
    for value in bad:
        try:
            FadeConfig(**{field: type(default)(value) if not isinstance(default, (bool, str)) else value})
        except ValueError as error:
            messages.append(str(error))
    assert messages, f"no bad value of {field} was refused"
    for message in messages:
        assert message.startswith(f"FadeConfig.{field} must be ")
        assert "must be in" not in message and ">=" not in message and "[" not in message


def test_an_override_keeps_the_field_name():
    """A value the command sets itself (not an option the user typed) is not reported as an option."""
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    args = commands.choices["protect"].parse_args(["in", "out", "--model", "osnet_x0_25"])
    with pytest.raises(UserError, match=r"^FadeConfig\.quantize must be True or False"):
        cli_options.config_from_args(args, quantize="yes")


def test_the_step_options_help_says_init_and_final_count_inside_steps():
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(FadeConfig)}
    assert "the init and final steps among them" in help_text["steps"]
    for field in ("init_steps", "final_steps"):
        assert "of the T steps (init + final steps at most T)" in help_text[field]
    # what the help claims is what FadeConfig accepts: init + final = T is fine, one more is refused
    FadeConfig(steps=10, init_steps=4, final_steps=6)
    FadeConfig(steps=10, init_steps=10, final_steps=0)
    for init, final in ((4, 7), (11, 0)):
        with pytest.raises(ValueError, match="count inside FadeConfig.steps"):
            FadeConfig(steps=10, init_steps=init, final_steps=final)
    FadeConfig(steps=1, init_steps=0, final_steps=0)  # "at least 1"
    # init steps are the first of the T steps, final steps the last; the finishing steps come after T
    config = FadeConfig(steps=10, init_steps=3, final_steps=2)
    phases = [phase_of_step(config, t) for t in range(12)]
    assert phases == [INIT] * 3 + [MAIN] * 5 + [FINAL] * 2 + [FINISH] * 2


@pytest.mark.parametrize("build, expected", [
    (None, f"--device cuda but CUDA is not available here: torch {torch.__version__} is a CPU-only build; "
           f"use --device cpu"),
    ("12.4", f"--device cuda but CUDA is not available here: torch {torch.__version__} (CUDA 12.4) sees no GPU; "
             f"use --device cpu"),
])
def test_device_message_says_why_cuda_is_missing(monkeypatch, build, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", build)
    with pytest.raises(UserError) as info:
        cli_options.resolve_device("cuda")
    assert str(info.value) == expected


@pytest.mark.parametrize("argv, command, message", [
    (["protect", "in"], "pixelfade protect", "the following arguments are required: OUT"),
    (["protect", "in", "out", "--stepz", "3"], "pixelfade protect", "unrecognized arguments: --stepz 3"),
    (["protect", "in", "out", "--steps", "x"], "pixelfade protect", "argument --steps: invalid int value: 'x'"),
    (["protect", "in", "out", "--schedule", "fast"], "pixelfade protect", "argument --schedule: invalid choice"),
    (["models", "--nonsense"], "pixelfade models", "unrecognized arguments: --nonsense"),
    (["frobnicate"], "pixelfade", "argument command: invalid choice: 'frobnicate'"),
    ([], "pixelfade", "the following arguments are required: command"),
])
def test_parse_errors_are_two_lines_without_the_usage(capsys, argv, command, message):
    assert _main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 2 and captured.out == ""
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[1] == f"run `{command} -h` for the options"
    assert "usage:" not in captured.err


def test_help_still_shows_the_usage(capsys):
    assert _main(["protect", "-h"]) == 0
    assert capsys.readouterr().out.startswith("usage: pixelfade protect")
