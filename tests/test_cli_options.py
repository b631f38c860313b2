"""The command line cannot drift from FadeConfig, and every option's --help states its default."""
import argparse
import dataclasses

import pytest

from pixelfade_fast import FadeConfig, cli
from pixelfade_fast.cli import options as cli_options

SUBCOMMANDS = ["protect", "merge", "refine", "seed", "evaluate", "synthped", "backends", "models"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_protect_has_one_option_per_config_field_with_its_default():
    protect = _subparsers(cli.build_parser())["protect"]
    defaults = FadeConfig()
    options = {a.dest: a for a in protect._actions}
    for item in dataclasses.fields(FadeConfig):
        if item.name == "quantize":  # a gallery always quantises
            assert item.name not in options
            continue
        action = options[item.name]
        assert action.default == getattr(defaults, item.name)
        assert action.help == item.metadata["help"]
        assert tuple(action.choices or ()) == tuple(item.metadata.get("choices") or ())
    args = protect.parse_args(["in", "out"])
    assert cli_options.config_from_args(args, quantize=True) == dataclasses.replace(defaults, quantize=True)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_states_every_default(command):
    parser = _subparsers(cli.build_parser())[command]
    formatter = parser._get_formatter()
    assert "default" in parser.format_help() or command in ("merge", "seed", "backends", "models")
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or action.help is None:
            continue
        shown = formatter._get_help_string(action) % {"default": action.default}
        assert "default" in shown, f"{command} {action.option_strings[-1]}: no default in its help"


def test_every_protect_option_has_help():
    protect = _subparsers(cli.build_parser())["protect"]
    assert all(a.help for a in protect._actions if a.option_strings)
