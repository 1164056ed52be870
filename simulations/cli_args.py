"""What the subcommands of gossip-sim (simulations/cli.py) share: argument types for
comma-separated lists, and the --workers option."""

from __future__ import annotations

import argparse
import os
from typing import TypeAlias

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # gossip-sim's subcommands


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def flags(text: str) -> list[bool]:
    return [x.strip() in ("on", "1", "true", "yes") for x in text.split(",")]


def modes(text: str) -> list[bool]:
    return [x.strip() == "push-pull" for x in text.split(",")]


def workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes to run trials in (the output does not change)")
