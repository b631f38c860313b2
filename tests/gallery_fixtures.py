"""Shared set-up of the gallery tests: a small folder of images, a tiny model file, and ways to run the command."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pixelfade_fast import cli
from pixelfade_fast.models import build_model, save_safetensors

SIZE = (64, 32)
# One torch thread, as tests/conftest.py sets: two threads on contended cores make each run many times slower.
FAST = ["--steps", "6", "--init-steps", "2", "--final-steps", "2", "--finish-steps", "2", "--backend", "reference",
        "--device", "cpu", "--batch-size", "2", "--input-size", str(SIZE[0]), str(SIZE[1]), "--no-progress",
        "--threads", "1"]
REPO = Path(__file__).resolve().parents[1]


def write_images(root: Path, names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (80, 40, 3), dtype=np.uint8)).save(root / name)


def tiny_weights(path: Path, seed: int = 0) -> Path:
    save_safetensors(build_model("tiny_cnn", seed=seed, input_size=SIZE), path)
    return path


def private_seed_file(path: Path, seed: int) -> Path:
    """A contract-2 seed file holding ``seed``, readable by its owner only (the command refuses a wider mode)."""
    path.write_text(f"contract 2\nseed {seed:#066x}\n")
    path.chmod(0o600)
    return path


def run_cli(*args, fast: bool = True) -> int:
    """``pixelfade protect`` in this process; returns the exit status (argparse's own exits included)."""
    try:
        return cli.main(["protect", *(FAST if fast else []), *map(str, args)])
    except SystemExit as stop:
        return int(stop.code)


def cli_command(*args) -> list[str]:
    return [sys.executable, "-m", "pixelfade_fast.cli", "protect", *map(str, args)]


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def run_subprocess(*args, env=None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), env=env or subprocess_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def output_bytes(out: Path) -> dict[str, bytes]:
    """Every PNG under OUT by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def free_port() -> int:
    """A TCP port free now on localhost: two test runs on one machine (worktrees, CI jobs) must not share a
    torchrun rendezvous port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def protect_as_ranks(protect, out: Path, monkeypatch, world_size: int = 2) -> None:
    """``protect(out)`` once per torchrun rank (RANK / WORLD_SIZE set as torchrun sets them), each exiting 0."""
    for rank in range(world_size):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world_size))
        assert protect(out) == 0
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
