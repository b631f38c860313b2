"""Command line: ``pixelfade protect | merge | seed | evaluate | synthped | train | backends | models``."""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from .evaluate_command import add_evaluate_command
from .gallery_commands import add_gallery_commands
from .tool_commands import add_tool_commands


class ArgumentParser(argparse.ArgumentParser):
    """A parse error is two lines, the error and where the options are, not the usage (27 lines for protect);
    the sub-command parsers are of this class too (add_subparsers makes them so)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\nrun `{self.prog} -h` for the options\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="pixelfade", description="PixelFade protection of pedestrian galleries")
    commands = parser.add_subparsers(dest="command", required=True)
    add_gallery_commands(commands)
    add_evaluate_command(commands)
    add_tool_commands(commands)
    commands.add_parser("train", add_help=False, help="train a Re-ID model of the zoo (pixelfade train -h)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a user's mistake prints ``error: ...`` (no traceback) and exits with 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer parses its own options (and its own -h)
        from ..training.command import main_train

        return main_train(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the sub-command's parser, so that the hint points at its options
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if hasattr(args, "argv"):
        args.argv = argv
    try:
        return args.func(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
