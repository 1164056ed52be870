"""gossip-sim's commands of convergence: converge (one write through N nodes, over
many trials), sweep (a grid of settings, CSV and plots), scale (wall seconds at large
N) and theory (synchronous rounds against the reference table)."""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import time
from pathlib import Path

from simulations.agreement import CASES, check
from simulations.cli_args import Commands, flags, floats, ints, modes, workers_arg
from simulations.experiments import FRACTIONS, Setup, Summary, Trial, run_trial, run_trials, summarize
from simulations.progress import Progress


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
    workers_arg(p)


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


def add_converge(sub: Commands) -> None:
    c = sub.add_parser("converge", help="one write through N nodes, over many trials")
    c.add_argument("--nodes", type=int, default=100)
    c.add_argument("--fanout", type=int, default=3)
    c.add_argument("--loss", type=float, default=0.0)
    c.add_argument("--interval", type=float, default=1.0)
    c.add_argument("--eager", action="store_true", help="eager push on")
    c.add_argument("--push-only", action="store_true", help="replies carry no delta")
    _setup_args(c)
    c.set_defaults(run=cmd_converge)


def add_sweep(sub: Commands) -> None:
    s = sub.add_parser("sweep", help="a grid of settings; CSV and PNG plots")
    s.add_argument("--nodes", type=ints, default=[10, 30, 100])
    s.add_argument("--fanout", type=ints, default=[3])
    s.add_argument("--loss", type=floats, default=[0.0])
    s.add_argument("--interval", type=floats, default=[1.0])
    s.add_argument("--eager", type=flags, default=[False], help="e.g. off,on")
    s.add_argument("--mode", type=modes, default=[False, True], help="push,push-pull")
    s.add_argument("--out", default="out/sweep")
    s.add_argument("--no-plots", action="store_true")
    _setup_args(s)
    s.set_defaults(run=cmd_sweep)


def add_scale(sub: Commands) -> None:
    w = sub.add_parser("scale", help="wall seconds for one write through N nodes")
    w.add_argument("--nodes", type=ints, default=[100, 1000])
    w.add_argument("--eager", action="store_true")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--members-per-message", type=int, default=16)
    w.add_argument("--introduce-all-up-to", type=int, default=2000,
                   help="above this N each node starts knowing 64 random others, not all")
    w.set_defaults(run=cmd_scale)


def add_theory(sub: Commands) -> None:
    t = sub.add_parser("theory", help="synchronous rounds against the reference Monte Carlo table")
    t.add_argument("--nodes", type=ints, default=[10, 30, 100, 1000])
    t.add_argument("--trials", type=int, default=100, help="per case below N=1000")
    t.add_argument("--large-trials", type=int, default=10, help="per case at N=1000")
    t.add_argument("--seed", type=int, default=1)
    workers_arg(t)
    t.set_defaults(run=cmd_theory)
