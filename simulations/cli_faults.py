"""gossip-sim's commands of faults: scenario (a named fault or lifecycle scenario, once
or over many seeds), check (the randomized fault search, its shrinking and replay)
and routine (the routine operations that once lost data, as stories)."""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from gossip.config import Config
from simulations import checker
from simulations.check_schedule import Schedule
from simulations.cli_args import Commands, workers_arg
from simulations.lifecycle import LIFECYCLE
from simulations.progress import Progress
from simulations.routine import FOUND_AT, ROUTINE
from simulations.scenarios import FAULTS, Report, ScenarioFailed

SCENARIOS = {**FAULTS, **LIFECYCLE}


def cmd_scenario(args: argparse.Namespace) -> int:
    names = {"all": list(SCENARIOS), "faults": list(FAULTS), "lifecycle": list(LIFECYCLE)}.get(
        args.name, [args.name]
    )
    status = 0
    for name in names:
        reports: list[Report] = []
        for seed in range(args.seed, args.seed + args.repeat):
            try:
                report = SCENARIOS[name](seed=seed)
            except ScenarioFailed as exc:
                print(exc)
                status = 1
                continue
            reports.append(report)
            if args.repeat == 1:
                print("\n".join(report.lines()))
        if args.repeat > 1:
            print("\n".join(repeat_lines(name, args.seed, args.repeat, reports)))
    return status


def repeat_lines(name: str, seed: int, repeat: int, reports: list[Report]) -> list[str]:
    """Each figure's median and max over the seeds that passed."""
    lines = [f"scenario {name}  seeds {seed}..{seed + repeat - 1}  passed {len(reports)}/{repeat}"]
    after = [r.converged_after for r in reports if r.converged_after is not None]
    figures: dict[str, list[float]] = {"converged after fault s": after}
    for report in reports:
        for key, value in report.figures.items():
            figures.setdefault(key, []).append(value)
    lines.append(f"  {'':<30}{'median':>10}{'max':>10}{'min':>10}")
    for key, values in figures.items():
        if values:
            lines.append(f"  {key:<30}{statistics.median(values):>10.3f}{max(values):>10.3f}"
                         f"{min(values):>10.3f}")
    return lines


def parse_seeds(spec: str) -> Iterable[int]:
    """'0-999' or '3,7,12'."""
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)


def _check_one(seed: int) -> checker.Outcome:
    outcome = checker.check(seed)
    outcome.trace = []  # (not sent back between processes)
    return outcome


def cmd_check(args: argparse.Namespace) -> int:
    """The randomized fault search: each seed a schedule, its invariants checked."""
    if args.replay:
        schedule = Schedule.from_json(Path(args.replay).read_text())
        outcome = checker.run(schedule, trace=args.trace)
        if args.trace:
            print("\n".join(outcome.trace))
        _print_outcome(outcome)
        return 0 if outcome.ok else 1
    seeds = list(parse_seeds(args.seeds))
    failed: list[checker.Outcome] = []
    totals: dict[str, float] = {}
    progress = Progress(len(seeds), "seeds")
    outcomes = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for outcome in pool.imap(_check_one, seeds, chunksize=4):
            outcomes.append(outcome)
            progress()
    for outcome in outcomes:
        for name, value in outcome.figures.items():
            merge = max if name.endswith("(max)") else sum  # the largest of any run, or a total
            totals[name] = merge((totals.get(name, 0), value))
        if not outcome.ok:
            failed.append(outcome)
            _print_outcome(outcome)
    kinds = Counter(kind for o in failed for kind in {v.kind for v in o.violations})
    shown = "".join(f", {kind} {count}" for kind, count in sorted(kinds.items()))
    print(f"{len(seeds)} schedules (seeds {args.seeds}): {len(failed)} with violations{shown}")
    print("  totals: " + ", ".join(f"{k} {v:g}" for k, v in totals.items() if k != "agreed after s"))
    if failed and args.shrink:  # the first schedule failing in each way
        for kind in sorted(kinds):
            first = next(o for o in failed if any(v.kind == kind for v in o.violations))
            steps = len(first.schedule.steps)
            print(f"shrinking seed {first.schedule.seed} ({kind}, {steps} steps) ...", flush=True)
            small = checker.shrink(checker.run(first.schedule), kind=kind)
            path = Path(args.save) / f"check-{first.schedule.seed}-{kind.replace(' ', '-')}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(small.schedule.to_json())
            _print_outcome(small)
            print(f"shrunk to {len(small.schedule.steps)} steps: {path}; replay with "
                  f"gossip-sim check --replay {path} --trace")
    return 1 if failed else 0


def _print_outcome(outcome: checker.Outcome) -> None:
    s = outcome.schedule
    verdict = "ok" if outcome.ok else f"{len(outcome.violations)} violation(s)"
    print(f"seed {s.seed}: {s.nodes} nodes, {len(s.steps)} steps: {verdict}")
    for v in outcome.violations[:5]:
        print(f"  {v.kind}: {v.detail}")


def cmd_routine(args: argparse.Namespace) -> int:
    """The routine operations that once lost data, at the settings they were found at
    (rounds every second, an hour of grace) or at today's defaults."""
    config = Config() if args.at_defaults else FOUND_AT
    unknown = [n for n in args.names if n not in ROUTINE]
    if unknown:
        print(f"gossip-sim routine: unknown {unknown}; choose from {', '.join(ROUTINE)}", file=sys.stderr)
        return 2
    status = 0
    for name in args.names or list(ROUTINE):
        started = time.perf_counter()
        try:
            report = ROUTINE[name](seed=args.seed, config=config)
        except ScenarioFailed as exc:
            print(exc)
            status = 1
            continue
        print("\n".join(report.lines()))
        print(f"  (ran in {time.perf_counter() - started:.1f} s)")
    return status


def add_scenario(sub: Commands) -> None:
    f = sub.add_parser("scenario", help="a named fault scenario")
    f.add_argument("name", choices=[*SCENARIOS, "all", "faults", "lifecycle"])
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--repeat", type=int, default=1, help="seeds seed..seed+R-1: median and max")
    f.set_defaults(run=cmd_scenario)


def add_check(sub: Commands) -> None:
    k = sub.add_parser("check", help="randomized fault schedules, each checked against the contract")
    k.add_argument("--seeds", default="0-99", help="e.g. 0-4999 or 3,17")
    k.add_argument("--shrink", action="store_true", help="shrink the first schedule failing in each way")
    k.add_argument("--save", default="out/check", help="where a shrunk schedule is written")
    k.add_argument("--replay", help="run a schedule saved as JSON")
    k.add_argument("--trace", action="store_true", help="with --replay: print the trace")
    workers_arg(k)
    k.set_defaults(run=cmd_check)


def add_routine(sub: Commands) -> None:
    r = sub.add_parser("routine", help="operations that once lost data, as stories")
    r.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(ROUTINE)} (default: all)")
    r.add_argument("--at-defaults", action="store_true",
                   help="at today's defaults (a day of grace: slow), not those found at")
    r.add_argument("--seed", type=int, default=1)
    r.set_defaults(run=cmd_routine)
