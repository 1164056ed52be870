"""gossip-sim: convergence of the real gossip core in virtual time.

  gossip-sim converge --nodes 100 --trials 50
  gossip-sim sweep --nodes 10,30,100 --out out/sweep
  gossip-sim scenario partition-heal --seed 7
  gossip-sim scenario crash-detect --repeat 10
  gossip-sim scale --nodes 1000,2000,5000,10000
  gossip-sim theory --nodes 10,30,100
  gossip-sim load --nodes 100 --rate 20 --loss 0.05
  gossip-sim check --seeds 0-999 --shrink
  gossip-sim routine --at-defaults
  gossip-sim sizes --probe-nodes 100,1000,10000 --heartbeat-nodes 100,1000

Output on stdout depends only on the arguments and the seed (scale also prints wall time).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from gossip.config import Config
from gossip.version import __version__
from simulations import checker, experiments
from simulations.agreement import CASES, check
from simulations.check_schedule import Schedule
from simulations.experiments import FRACTIONS, Setup, Summary, Trial, run_trial, run_trials, summarize
from simulations.lifecycle import LIFECYCLE
from simulations.load import Load, run_load
from simulations.progress import Progress
from simulations.ratelimit import RateLimitRun, run_ratelimit
from simulations.routine import FOUND_AT, ROUTINE
from simulations.scenarios import FAULTS, Report, ScenarioFailed
from simulations.sizes import heartbeats, probe, quiet_run, restart_history, variants

SCENARIOS = {**FAULTS, **LIFECYCLE}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _flags(text: str) -> list[bool]:
    return [x.strip() in ("on", "1", "true", "yes") for x in text.split(",")]


def _modes(text: str) -> list[bool]:
    return [x.strip() == "push-pull" for x in text.split(",")]


def _fmt(x: float) -> str:
    return "-" if math.isinf(x) else f"{x:.2f}"


def _setup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2, help="rounds before the write")
    p.add_argument("--asynchronous", action="store_true",
                   help="real timing: jitter, staggered rounds, latency tail")
    p.add_argument("--latency", type=float, default=0.001, help="one-way seconds")
    p.add_argument("--members-per-message", type=int, default=16)
    p.add_argument("--loss-per", choices=["message", "exchange"], default="message",
                   help="message: request and reply lost apart; exchange: both or neither")
    _workers_arg(p)


def _workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes to run trials in (the output does not change)")


def _trials(setup: Setup, args: argparse.Namespace, progress: Progress) -> list[Trial]:
    return run_trials(setup, args.trials, args.seed, progress, args.workers)


def converge_lines(s: Summary) -> list[str]:
    st = s.setup
    timing = "asynchronous" if not st.synchronous else "synchronous rounds"
    lines = [
        f"converge: N={st.nodes} fanout={st.fanout} loss={st.loss:g} per {st.loss_unit} "
        f"interval={st.interval:g}s "
        f"{st.mode} eager={'on' if st.eager else 'off'} {timing} trials={s.trials}",
        f"{'':6}{'rounds median / p99 / max':>30}{'seconds median / p99 / max':>32}",
    ]
    for f in FRACTIONS:
        r, sec = s.rounds[f], s.seconds[f]
        lines.append(f"{f:>5.0%} {_fmt(r[1]):>12} {_fmt(r[2]):>8} {_fmt(r[3]):>8}"
                     f"{_fmt(sec[1]):>16} {_fmt(sec[2]):>8} {_fmt(sec[3]):>8}")
    lines += [
        f"mean rounds to 100%: {_fmt(s.rounds[1.0][0])}   incomplete trials: {s.incomplete}",
        f"per node per round: {s.messages_per_node_round:.2f} messages, "
        f"{s.bytes_per_node_round:.0f} bytes",
    ]
    return lines


def cmd_converge(args: argparse.Namespace) -> int:
    setup = Setup(
        nodes=args.nodes, fanout=args.fanout, loss=args.loss, interval=args.interval,
        eager=args.eager, pull=not args.push_only, synchronous=not args.asynchronous,
        latency=args.latency, warmup=args.warmup, members_per_message=args.members_per_message,
        loss_unit=args.loss_per,
    )
    trials = _trials(setup, args, Progress(args.trials, "converge"))
    print("\n".join(converge_lines(summarize(setup, trials))))
    return 0


CSV_FIELDS = [
    "nodes", "fanout", "loss", "loss_per", "interval", "eager", "mode", "synchronous", "trials", "incomplete",
    "rounds50_median", "rounds99_median", "rounds100_mean", "rounds100_median", "rounds100_p99",
    "rounds100_max", "seconds100_median", "seconds100_p99", "messages_per_node_round",
    "bytes_per_node_round",
]


def csv_row(s: Summary) -> list[object]:
    st = s.setup
    r100, sec = s.rounds[1.0], s.seconds[1.0]
    return [
        st.nodes, st.fanout, st.loss, st.loss_unit, st.interval, int(st.eager), st.mode, int(st.synchronous),
        s.trials, s.incomplete, f"{s.rounds[0.5][1]:.3f}", f"{s.rounds[0.99][1]:.3f}",
        f"{r100[0]:.3f}", f"{r100[1]:.3f}", f"{r100[2]:.3f}", f"{r100[3]:.3f}",
        f"{sec[1]:.4f}", f"{sec[2]:.4f}", f"{s.messages_per_node_round:.3f}",
        f"{s.bytes_per_node_round:.1f}",
    ]


def cmd_sweep(args: argparse.Namespace) -> int:
    grid = list(itertools.product(args.nodes, args.fanout, args.loss, args.interval,
                                  args.eager, args.mode))
    progress = Progress(len(grid) * args.trials, "sweep")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries: list[Summary] = []
    curves: list[tuple[str, list[Trial]]] = []
    for n, k, loss, interval, eager, pull in grid:
        setup = Setup(
            nodes=n, fanout=k, loss=loss, interval=interval, eager=eager, pull=pull,
            synchronous=not args.asynchronous, latency=args.latency, warmup=args.warmup,
            members_per_message=args.members_per_message, loss_unit=args.loss_per,
        )
        trials = _trials(setup, args, progress)
        summary = summarize(setup, trials)
        summaries.append(summary)
        unit = f" per {setup.loss_unit}" if loss else ""
        label = f"N={n} k={k} loss={loss:g}{unit} {setup.mode}" + (" eager" if eager else "")
        curves.append((label, trials))
        print(f"{label:40} mean rounds to 100%: {_fmt(summary.rounds[1.0][0]):>6}  "
              f"p99 {_fmt(summary.rounds[1.0][2]):>6}")
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        writer.writerows(csv_row(s) for s in summaries)
    if not args.no_plots:
        from simulations.plots import rounds_vs_n, spread_over_time

        rounds_vs_n(summaries, out / "rounds_vs_n.png")
        spread_over_time(curves, out / "spread_over_time.png")
    print(f"wrote {out / 'sweep.csv'}" + ("" if args.no_plots else " and 2 PNG plots"))
    return 0


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


def cmd_scale(args: argparse.Namespace) -> int:
    """Wall time of one write to full convergence (asynchronous, eager push as given)."""
    print(f"{'N':>7} {'wall s':>8} {'virtual s':>10} {'messages':>10} {'MB':>8}")
    for n in args.nodes:
        setup = Setup(nodes=n, eager=args.eager, synchronous=False, warmup=1,
                      members_per_message=args.members_per_message,
                      introduce=None if n <= args.introduce_all_up_to else 64)
        started = time.perf_counter()
        trial = run_trial(setup, f"{args.seed}:scale:{n}")
        wall = time.perf_counter() - started
        print(f"{n:>7} {wall:>8.2f} {trial.seconds_to(1.0):>10.3f} {trial.messages:>10} "
              f"{trial.bytes / 1e6:>8.2f}", flush=True)
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    """Synchronous rounds of the core against the reference figures (exit 1 on a miss)."""
    cases = [c for c in CASES if c.nodes in args.nodes]
    print(f"{'case':<38} {'trials':>6} {'core mean/p99':>14} {'reference':>12}  {'from':<10} within")
    misses = 0
    for case in cases:
        trials = args.trials if case.nodes < 1000 else args.large_trials
        a = check(case, trials, args.seed, args.workers)
        misses += not a.within
        print(f"{case.label:<38} {trials:>6} {a.mean:>8.2f} / {a.p99:<3g} "
              f"{a.ref_mean:>6.2f} / {a.ref_p99:<3g}  {a.source:<10} {'yes' if a.within else 'NO'}",
              flush=True)
    print(f"{len(cases) - misses} of {len(cases)} within the band (mean +-1 round, p99 +-2)")
    return 1 if misses else 0


def cmd_load(args: argparse.Namespace) -> int:
    """Traffic per node under a steady write load, by message kind."""
    load = Load(nodes=args.nodes, rate=args.rate, seconds=args.seconds, keys=args.keys,
                interval=args.interval, eager=args.eager, loss=args.loss,
                loss_unit=args.loss_per)
    t = run_load(load, args.seed)
    print(f"load: N={load.nodes} {load.rate:g} writes/s for {load.seconds:g} s over {load.keys} keys, "
          f"interval={load.interval:g}s eager={'on' if load.eager else 'off'} "
          f"loss={load.loss:g} per {load.loss_unit}")
    print(f"{'per node per second':<20}" + "".join(f"{k:>10}" for k in t.kilobytes))
    print(f"{'kB':<20}" + "".join(f"{v:>10.1f}" for v in t.kilobytes.values()))
    print(f"{'messages':<20}" + "".join(f"{v:>10.2f}" for v in t.messages.values()))
    print(f"converged after the load: {'yes' if t.converged else 'NO'}")
    return 0 if t.converged else 1


def cmd_ratelimit(args: argparse.Namespace) -> int:
    """A fleet-wide rate limit: admitted requests per window, and the overshoot."""
    run = RateLimitRun(nodes=args.nodes, offered=args.offered, limit=args.limit, period=args.period,
                       windows=args.windows, latency=args.latency, latency_tail=args.latency,
                       interval=args.interval)
    print(f"rate limit: N={run.nodes}, {run.limit} per {run.period:g} s, offered {run.offered:g}/s "
          f"through random nodes, one-way latency {run.latency * 1000:g} ms + a tail of that mean")
    print(f"{'window':>6} {'admitted':>9} {'admitted/L':>11} {'overshoot':>10}")
    for i, w in enumerate(run_ratelimit(run, args.seed)):
        print(f"{i + 1:>6} {w.admitted:>9} {w.ratio:>11.3f} {w.overshoot:>10}")
    return 0


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
    seeds = list(checker.seeds(args.seeds))
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


def _detection(times: list[float], undetected: int) -> str:
    if not times:
        return "never"
    missed = f", {undetected} never" if undetected else ""
    return f"{statistics.median(times):.1f} / {max(times):.1f} s{missed}"


def _variants(text: str) -> list[str]:
    names = text.split(",")
    if not names or any(n not in ("before", "after") for n in names):
        raise argparse.ArgumentTypeError(f"expected before, after or before,after; got {text!r}")
    return names


def cmd_sizes(args: argparse.Namespace) -> int:
    """Whole views (before) against sampled ones (after), side by side: bytes per
    message, rounds to converge, false dead marks, crash detection, digests over restarts."""
    chosen = variants(Config(view_size=args.view_size) if args.view_size else None)
    chosen = {name: config for name, config in chosen.items() if name in args.only}
    sizes = ", ".join(f"{name} {config.view_size}" for name, config in chosen.items())
    print(f"members per message: {sizes}; interval 1 s, fanout 3")
    print("\nbytes per exchange or reply, one node knowing N members (probe: 100 rounds), mean / max")
    for n in args.probe_nodes:
        row = [probe(n, name, config) for name, config in chosen.items()]
        cells = "   ".join(f"{p.variant} {p.mean_bytes:,.0f} / {p.max_bytes:,}" for p in row)
        print(f"  N={n:<6} {cells}", flush=True)
    for n in args.sim_nodes:
        print(f"\nfull simulator, N={n}: {args.sim_seconds:g} s fault-free, then one node crashed")
        for name, config in chosen.items():
            run = quiet_run(n, name, config, args.sim_seconds, args.seed, crash_timeout=args.crash_timeout)
            print(f"  {name:<7} {run.messages:,} messages, {run.mean_bytes:,.0f} / {run.max_bytes:,} bytes "
                  f"(mean / max); false dead marks {run.false_dead}; crash detected after "
                  f"{_detection(run.detection, run.undetected)} (median / slowest)", flush=True)
    for n in args.heartbeat_nodes:
        print(f"\nmembership alone, N={n}: {args.rounds} rounds fault-free, then one node crashed")
        for name, config in chosen.items():
            rounds = args.rounds if name == "after" or n <= args.before_full_up_to else args.before_rounds
            hb = heartbeats(n, name, config, rounds, args.seed, crash_timeout=args.crash_timeout)
            print(f"  {name:<7} {rounds} rounds: false dead marks {hb.false_dead}, false suspect "
                  f"{hb.false_suspect}; crash detected after {_detection(hb.detection, hb.undetected)}"
                  f" (median / slowest)", flush=True)
    for n in args.converge_nodes:
        print(f"\nrounds to converge, N={n}, push-pull, synchronous rounds, detector on, "
              f"{args.trials} trials: mean / p99")
        for name, config in chosen.items():
            setup = Setup(nodes=n, warmup=2, members_per_message=config.view_size, detector=True)
            trials = run_trials(setup, args.trials, args.seed, workers=args.workers)
            rounds = [t.rounds_to(1.0) for t in trials]
            p99 = experiments.quantile(rounds, 0.99)
            print(f"  {name:<7} {statistics.fmean(rounds):.2f} / {p99:g}", flush=True)
    if args.restarts:
        print(f"\ndigests over restarts (10 nodes, a node restarted empty every 5 s, one write a life, "
              f"reap_after 120 s)\n  {'virtual s':>9} {'lives':>6} {'writers ever':>13} {'in a digest':>12} "
              f"{'retired sets':>12} {'retired kept':>13}")
        for pt in restart_history(restarts=args.restarts, seed=args.seed):
            print(f"  {pt.at:>9.0f} {pt.lives:>6} {pt.writers_ever:>13} {pt.digest:>12} "
                  f"{pt.retired_sets:>12} {pt.retired_kept:>13}", flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gossip-sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("converge", help="one write through N nodes, over many trials")
    c.add_argument("--nodes", type=int, default=100)
    c.add_argument("--fanout", type=int, default=3)
    c.add_argument("--loss", type=float, default=0.0)
    c.add_argument("--interval", type=float, default=1.0)
    c.add_argument("--eager", action="store_true", help="eager push on")
    c.add_argument("--push-only", action="store_true", help="replies carry no delta")
    _setup_args(c)
    c.set_defaults(run=cmd_converge)

    s = sub.add_parser("sweep", help="a grid of settings; CSV and PNG plots")
    s.add_argument("--nodes", type=_ints, default=[10, 30, 100])
    s.add_argument("--fanout", type=_ints, default=[3])
    s.add_argument("--loss", type=_floats, default=[0.0])
    s.add_argument("--interval", type=_floats, default=[1.0])
    s.add_argument("--eager", type=_flags, default=[False], help="e.g. off,on")
    s.add_argument("--mode", type=_modes, default=[False, True], help="push,push-pull")
    s.add_argument("--out", default="out/sweep")
    s.add_argument("--no-plots", action="store_true")
    _setup_args(s)
    s.set_defaults(run=cmd_sweep)

    f = sub.add_parser("scenario", help="a named fault scenario")
    f.add_argument("name", choices=[*SCENARIOS, "all", "faults", "lifecycle"])
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--repeat", type=int, default=1, help="seeds seed..seed+R-1: median and max")
    f.set_defaults(run=cmd_scenario)

    w = sub.add_parser("scale", help="wall seconds for one write through N nodes")
    w.add_argument("--nodes", type=_ints, default=[100, 1000])
    w.add_argument("--eager", action="store_true")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--members-per-message", type=int, default=16)
    w.add_argument("--introduce-all-up-to", type=int, default=2000,
                   help="above this N each node starts knowing 64 random others, not all")
    w.set_defaults(run=cmd_scale)

    ld = sub.add_parser("load", help="traffic per node under a steady write load")
    ld.add_argument("--nodes", type=int, default=10)
    ld.add_argument("--rate", type=float, default=20.0, help="writes per second, cluster-wide")
    ld.add_argument("--seconds", type=float, default=30.0)
    ld.add_argument("--keys", type=int, default=500)
    ld.add_argument("--interval", type=float, default=1.0)
    ld.add_argument("--eager", type=lambda s: _flags(s)[0], default=True, help="on or off")
    ld.add_argument("--loss", type=float, default=0.0)
    ld.add_argument("--loss-per", choices=["message", "exchange"], default="message")
    ld.add_argument("--seed", type=int, default=1)
    ld.set_defaults(run=cmd_load)

    rl = sub.add_parser("ratelimit", help="a fleet-wide rate limit: admitted per window, the overshoot")
    rl.add_argument("--nodes", type=int, default=4)
    rl.add_argument("--offered", type=float, default=1000.0, help="requests per second, cluster-wide")
    rl.add_argument("--limit", type=int, default=500)
    rl.add_argument("--period", type=float, default=10.0, help="seconds per window")
    rl.add_argument("--windows", type=int, default=5)
    rl.add_argument("--latency", type=float, default=0.002, help="one-way seconds (and the tail's mean)")
    rl.add_argument("--interval", type=float, default=0.1, help="gossip interval, seconds")
    rl.add_argument("--seed", type=int, default=1)
    rl.set_defaults(run=cmd_ratelimit)

    k = sub.add_parser("check", help="randomized fault schedules, each checked against the contract")
    k.add_argument("--seeds", default="0-99", help="e.g. 0-4999 or 3,17")
    k.add_argument("--shrink", action="store_true", help="shrink the first schedule failing in each way")
    k.add_argument("--save", default="out/check", help="where a shrunk schedule is written")
    k.add_argument("--replay", help="run a schedule saved as JSON")
    k.add_argument("--trace", action="store_true", help="with --replay: print the trace")
    _workers_arg(k)
    k.set_defaults(run=cmd_check)

    r = sub.add_parser("routine", help="operations that once lost data, as stories")
    r.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(ROUTINE)} (default: all)")
    r.add_argument("--at-defaults", action="store_true",
                   help="at today's defaults (a day of grace: slow), not those found at")
    r.add_argument("--seed", type=int, default=1)
    r.set_defaults(run=cmd_routine)

    z = sub.add_parser("sizes", help="whole views against sampled ones: bytes, rounds, detection, digests")
    z.add_argument("--view-size", type=int, default=0, help="the 'after' view size (default: the config's)")
    z.add_argument("--only", type=_variants, default=["before", "after"], help="before, after or both")
    z.add_argument("--probe-nodes", type=_ints, default=[100, 1000, 10000])
    z.add_argument("--sim-nodes", type=_ints, default=[100], help="full simulator runs")
    z.add_argument("--sim-seconds", type=float, default=60.0)
    z.add_argument("--heartbeat-nodes", type=_ints, default=[100, 1000], help="membership-only runs")
    z.add_argument("--rounds", type=int, default=600, help="fault-free rounds of the membership-only runs")
    z.add_argument("--before-full-up-to", type=int, default=100,
                   help="above this N the 'before' membership run has --before-rounds (whole views are slow)")
    z.add_argument("--before-rounds", type=int, default=60)
    z.add_argument("--crash-timeout", type=int, default=900, help="rounds (seconds) to wait for detection")
    z.add_argument("--converge-nodes", type=_ints, default=[100])
    z.add_argument("--trials", type=int, default=20)
    z.add_argument("--restarts", type=int, default=200, help="0: no digest history")
    z.add_argument("--seed", type=int, default=1)
    _workers_arg(z)
    z.set_defaults(run=cmd_sizes)

    t = sub.add_parser("theory", help="synchronous rounds against the reference Monte Carlo table")
    t.add_argument("--nodes", type=_ints, default=[10, 30, 100, 1000])
    t.add_argument("--trials", type=int, default=100, help="per case below N=1000")
    t.add_argument("--large-trials", type=int, default=10, help="per case at N=1000")
    t.add_argument("--seed", type=int, default=1)
    _workers_arg(t)
    t.set_defaults(run=cmd_theory)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
