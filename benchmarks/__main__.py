"""`python -m benchmarks [--quick] [--only PART ...]`: run the benchmarks side by side
with their baselines and write docs/benchmarks/ (report and plots). The parts in ON_REQUEST
run only when named with --only (`make bench-probes`)."""

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
    multihost_probes,
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
    "probes": multihost_probes.run,
}
# Parts not in a whole run (`make bench`), each with its make target and the folder of
# docs/benchmarks[/quick] its report goes to when it runs alone.
ON_REQUEST = {"probes": ("make bench-probes", "probes")}  # about 7 minutes of 50 nodes, root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a reduced run, about 5 minutes")
    whole_run = [part for part in PARTS if part not in ON_REQUEST]
    p.add_argument("--only", nargs="+", choices=list(PARTS), default=whole_run)
    p.add_argument("--out", type=Path, help="report directory (default docs/benchmarks[/quick], and the "
                   "part's folder below it for a part that runs only when named, run alone)")
    args = p.parse_args(argv)
    ensure_debian_tools({"wrk": "wrk", "redis-server": "redis-server"})
    alone = ON_REQUEST[args.only[0]][1] if len(args.only) == 1 and args.only[0] in ON_REQUEST else ""
    out = args.out or ROOT / "docs" / "benchmarks" / ("quick" if args.quick else "") / alone
    out.mkdir(parents=True, exist_ok=True)
    command = "make bench-quick" if args.quick else "make bench"
    if args.only != whole_run:
        command = f"python -m benchmarks {'--quick ' if args.quick else ''}--only {' '.join(args.only)}"
    started = time.monotonic()
    sections, took = [], []
    with leaving_nothing_behind():  # whatever stops the run: Ctrl-C, SIGTERM, a timeout
        for name in args.only:
            print(f"== {name}", flush=True)
            part_started = time.monotonic()
            sections.append(PARTS[name](args.quick, command, out))
            took.append(f"{name} {time.monotonic() - part_started:.0f} s")
            print(f"== {took[-1]}", flush=True)
    on_request = ", ".join(
        f"`{target}` ([report]({os.path.relpath(ROOT / 'docs' / 'benchmarks' / folder / 'README.md', out)}))"
        for target, folder in ON_REQUEST.values()
    )
    preamble = (
        f"# Benchmarks{' (quick mode)' if args.quick else ''}\n\n"
        f"Made by `{command}` on {machine()}, {time.strftime('%Y-%m-%d')}, in "
        f"{time.monotonic() - started:.0f} s ({', '.join(took)}). The machine's 2 cores may be "
        "shared with other work (each part gives the load average at its start), so figures "
        "are noisy: each baseline runs in the same run as its subject, interleaved with it, and the ratios "
        "are the figures to read. Everything runs on 127.0.0.1 (the many-hosts parts on network "
        "namespaces of this machine); load generators share the "
        "cores with the servers. What limits each missed goal, with profiles "
        "(`python -m benchmarks.profile`), is in "
        f"[ANALYSIS.md]({os.path.relpath(ROOT / 'docs' / 'benchmarks' / 'ANALYSIS.md', out)}). "
        f"Run only on request: {on_request}.\n\n## Goals\n"
    )
    report = write_report(out, sections, preamble)
    print(f"report: {report.relative_to(ROOT) if report.is_relative_to(ROOT) else report}")
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
