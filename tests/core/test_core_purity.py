"""gossip/ is pure: no I/O, no clock reads, no global randomness.

Every module of the core is parsed with `ast`; importing an I/O or time module, or using
the `random` module's shared global generator, fails the test with the file and line.
An injected `random.Random` (as a type, or built from an explicit seed) is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "gossip"

FORBIDDEN_MODULES = frozenset(
    {
        "asyncio", "anyio", "httpx", "fastapi", "starlette", "uvicorn", "socket", "time",
        "datetime", "threading", "os", "subprocess",
    }
)
ALLOWED_RANDOM_NAMES = frozenset({"Random"})


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import or use of module-level randomness in `source`."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []
    random_aliases: set[str] = set()  # names bound to the random module
    random_class_aliases: set[str] = set()  # names bound to random.Random

    def where(node: ast.AST) -> str:
        return f"{filename}:{getattr(node, 'lineno', '?')}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    found.append(f"{where(node)}: imports {alias.name}")
                if alias.name == "random":
                    random_aliases.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            root = module.split(".")[0]
            if node.level == 0 and root in FORBIDDEN_MODULES:
                found.append(f"{where(node)}: imports from {module}")
            if node.level == 0 and module == "random":
                for alias in node.names:
                    if alias.name in ALLOWED_RANDOM_NAMES:
                        random_class_aliases.add(alias.asname or alias.name)
                    else:
                        found.append(
                            f"{where(node)}: imports random.{alias.name} (module-level random)"
                        )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "import_module":
            found.append(f"{where(node)}: uses import_module (a way around this check)")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in random_aliases and node.attr not in ALLOWED_RANDOM_NAMES:
                found.append(f"{where(node)}: uses random.{node.attr} (module-level random)")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name in ("__import__", "import_module", "exec", "eval"):
                found.append(f"{where(node)}: calls {name}()")
            is_random_class = (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in random_aliases
                and func.attr == "Random"
            ) or (name is not None and name in random_class_aliases)
            if is_random_class and not node.args and not node.keywords:
                found.append(f"{where(node)}: random.Random() without a seed reads the OS")
    return found


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_modules_are_found() -> None:
    names = {p.name for p in core_modules()}
    assert {"clock.py", "store.py", "protocol.py", "codec.py", "membership.py"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"), str(path.relative_to(CORE.parent)))
    assert not found, "gossip/ must stay free of I/O, time and global random:\n" + "\n".join(found)


# -- the checker itself catches what it should (so the test above is not vacuous) ----------


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import os.path",
        "import time as t",
        "from datetime import datetime",
        "from anyio import sleep",
        "import httpx",
        "from fastapi import FastAPI",
        "from starlette.requests import Request",
        "import uvicorn",
        "import socket",
        "import threading",
        "import subprocess",
        "import random\nx = random.random()",
        "import random\nx = random.choice([1, 2])",
        "import random as r\nr.shuffle([])",
        "import random\nf = random.uniform",
        "from random import choice",
        "from random import random as rnd",
        "import random\nrng = random.Random()",
        "from random import Random\nrng = Random()",
        "import random\nrng = random.SystemRandom(1)",
        "x = __import__('os')",
        "import importlib\nm = importlib.import_module('time')",
    ],
)
def test_checker_flags(source: str) -> None:
    assert violations(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import random\ndef f(rng: random.Random) -> float:\n    return rng.random()",
        "from random import Random\ndef f(rng: Random) -> None:\n    rng.shuffle([])",
        "import random\nrng = random.Random(42)",
        "import json, hashlib, math, bisect",
        "from collections.abc import Mapping",
        "from gossip.clock import Timestamp",
    ],
)
def test_checker_allows(source: str) -> None:
    assert violations(source) == []
