"""`python -m scripts.limits_peers [--only limits|slowapi]`: the peers' own suites against
`gossip://` (see the package's docstring). The versions are the ones pinned in pyproject.toml's
`peers` extra, and must be the ones installed.

- limits: its sdist, fetched from the package index with pip, ships its tests; their storage
  and strategy tests run (tests/test_storage.py, tests/test_strategy.py).
- slowapi: its sdist ships no tests, and its source repository is not a package index, so
  they are run only from a checkout given as SLOWAPI_TESTS=<directory holding its tests/>
  (at the pinned version). Without one this part says so and is not run;
  tests/node/test_limits_storage.py (in `make test`) runs slowapi apps on both storages instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMITS_TESTS = ["tests/test_storage.py", "tests/test_strategy.py"]


def pins() -> dict[str, str]:
    """The exact versions of the `peers` extra (`name==version`)."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["peers"]
    return dict(req.split("==", 1) for req in extra if "==" in req)


def check_installed(name: str, pinned: str) -> None:
    installed = version(name)
    if installed != pinned:
        sys.exit(f"{name} {installed} is installed, the peers' suites are pinned at {pinned}: "
                 "pip install -e '.[peers]'")


def limits_suite(work: Path, pinned: str) -> Path:
    """The tests of the `limits` sdist at `pinned`, fetched once into `work`."""
    sdist = work / f"limits-{pinned}.tar.gz"
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                        "--no-deps", "--dest", str(work), f"limits=={pinned}"], check=True)
    suite = work / f"limits-{pinned}-tests"
    if not suite.exists():
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(f"limits-{pinned}/tests/")]
            tar.extractall(work / "unpacked", members=members, filter="data")
        shutil.move(work / "unpacked" / f"limits-{pinned}", suite)
        shutil.rmtree(work / "unpacked")
    return suite


def run(suite: str, directory: Path, tests: list[str]) -> int:
    """Their tests, from their directory (so that `tests.*` is theirs), with our plugin and
    none of their configuration (which wants their docker services and plugins)."""
    ini = directory / "peers-pytest.ini"
    ini.write_text("[pytest]\naddopts = -rfEX -p no:cacheprovider\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(directory)])}
    command = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(directory), "--noconftest",
               "-p", "scripts.limits_peers.plugin", f"--peer-suite={suite}", "-q", *tests]
    print(f"== {suite}: {' '.join(tests)} (in {directory})", flush=True)
    return subprocess.run(command, cwd=directory, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.limits_peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["limits", "slowapi"], help="one suite (default both)")
    p.add_argument("--work", type=Path, default=ROOT / ".peers", help="where the suites are fetched")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    pinned = pins()
    codes = {}
    if args.only in (None, "limits"):
        check_installed("limits", pinned["limits"])
        codes["limits"] = run("limits", limits_suite(args.work, pinned["limits"]), LIMITS_TESTS)
    if args.only in (None, "slowapi"):
        check_installed("slowapi", pinned["slowapi"])
        source = os.environ.get("SLOWAPI_TESTS")
        if not source:
            print(f"== slowapi: NOT RUN. slowapi {pinned['slowapi']}'s sdist ships no tests and its "
                  "source repository is not on a package index: set SLOWAPI_TESTS to a checkout of it "
                  "at that version to run them (tests/node/test_limits_storage.py runs slowapi apps on "
                  "both storages).")
        else:
            suite = args.work / f"slowapi-{pinned['slowapi']}-tests"
            shutil.rmtree(suite, ignore_errors=True)
            shutil.copytree(Path(source) / "tests", suite / "tests")
            codes["slowapi"] = run("slowapi", suite, ["tests"])
    verdicts = [f"{name}: {'ok' if code == 0 else f'FAILED ({code})'}" for name, code in codes.items()]
    if verdicts:
        print("== " + ", ".join(verdicts))
    return max(codes.values(), default=0)


if __name__ == "__main__":
    sys.exit(main())
