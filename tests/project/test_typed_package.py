"""The package is typed for its users. Built as pip builds it (setuptools' build_py, package
data included) into a directory of its own, it holds a py.typed marker in each package;
and the typed example app and its test pass `mypy --strict` run outside the repository,
where mypy takes the package for an installed one and reads its hints only because of
that marker (PEP 561): without the marker, the same check fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gossip", "node", "simulations")
CACHE = ROOT / ".mypy_cache" / "typed-package"  # (the dependencies' analysis, kept between runs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages as a wheel would install them."""
    lib = tmp_path_factory.mktemp("site-packages")
    setup = [sys.executable, "-c", "import setuptools; setuptools.setup()"]
    done = subprocess.run([*setup, "-q", "build_py", "--build-lib", str(lib)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return lib


def mypy_strict(user: Path, lib: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on the user's files, with `lib` on the path as installed packages are."""
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(CACHE), "."]
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"} | {"PYTHONPATH": str(lib)}
    return subprocess.run(command, cwd=user, env=env, capture_output=True, text=True, timeout=300)


def test_each_package_ships_its_marker(installed: Path) -> None:
    for package in PACKAGES:
        assert (installed / package / "py.typed").is_file(), package


def test_the_typed_example_passes_mypy_strict_against_the_installed_package(
    installed: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user-project"  # outside the repository: no config, no sources of ours
    (user / "examples").mkdir(parents=True)
    (user / "examples" / "__init__.py").touch()
    shutil.copy(ROOT / "examples" / "typed_app.py", user / "examples")
    shutil.copy(ROOT / "tests" / "project" / "test_typed_app.py", user)
    checked = mypy_strict(user, installed)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success" in checked.stdout

    (installed / "node" / "py.typed").unlink()  # as if the marker had not shipped
    try:
        unmarked = mypy_strict(user, installed)
    finally:
        (installed / "node" / "py.typed").touch()
    assert unmarked.returncode == 1 and "missing library stubs or py.typed marker" in unmarked.stdout
