"""Command line: ``pixelfade protect | merge | seed | evaluate | synthped | train | backends | models``."""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from .evaluate_command import add_evaluate_command
from .gallery_commands import add_gallery_commands
from .tool_commands import add_tool_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelfade", description="PixelFade protection of pedestrian galleries")
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
    args = build_parser().parse_args(argv)
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
