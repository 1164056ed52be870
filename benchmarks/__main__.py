"""`python -m benchmarks [--quick] [--only PART ...]`: run the benchmarks side by side
with their baselines and write docs/benchmarks/ (report and plots)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    apply_cost,
    idle,
    limits_hit,
    memory,
    multihost,
    propagation,
    ratelimit,
    read_path,
    write_load,
)
from benchmarks.report import Section, write_report
from benchmarks.system import LOG_DIR, ROOT, ensure_debian_tools, leaving_nothing_behind, machine

PARTS: dict[str, Callable[[bool, str, Path], Section]] = {
    "read": read_path.run,
    "propagation": propagation.run,
    "idle": idle.run,
    "writes": write_load.run,
    "memory": memory.run,
    "apply": apply_cost.run,
    "ratelimit": ratelimit.run,
    "multihost": multihost.run,
    "limits": limits_hit.run,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a reduced run, about 5 minutes")
    p.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument("--out", type=Path, help="report directory (default docs/benchmarks[/quick])")
    args = p.parse_args(argv)
    ensure_debian_tools({"wrk": "wrk", "redis-server": "redis-server"})
    out = args.out or ROOT / "docs" / "benchmarks" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    command = "make bench-quick" if args.quick else "make bench"
    if args.only != list(PARTS):
        command = f"python -m benchmarks {'--quick ' if args.quick else ''}--only {' '.join(args.only)}"
    started = time.monotonic()
    sections = []
    with leaving_nothing_behind():  # whatever stops the run: Ctrl-C, SIGTERM, a timeout
        for name in args.only:
            print(f"== {name}", flush=True)
            sections.append(PARTS[name](args.quick, command, out))
    preamble = (
        f"# Benchmarks{' (quick mode)' if args.quick else ''}\n\n"
        f"Made by `{command}` on {machine()}, {time.strftime('%Y-%m-%d')}, in "
        f"{time.monotonic() - started:.0f} s. The machine's 2 cores were shared with other "
        "work (colleagues' tests and simulations) while this ran, so figures are noisy: each "
        "baseline runs in the same run as its subject, interleaved with it, and the ratios "
        "are the figures to read. Everything runs on 127.0.0.1; load generators share the "
        "cores with the servers. What limits each missed goal, with profiles "
        "(`python -m benchmarks.profile`), is in "
        f"[ANALYSIS.md]({os.path.relpath(ROOT / 'docs' / 'benchmarks' / 'ANALYSIS.md', out)}).\n\n## Goals\n"
    )
    report = write_report(out, sections, preamble)
    print(f"report: {report.relative_to(ROOT) if report.is_relative_to(ROOT) else report}")
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
