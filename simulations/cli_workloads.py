"""gossip-sim's commands of workloads: load (traffic per node under a steady write
load), ratelimit (a fleet-wide rate limit, admitted per window and the overshoot) and
sizes (whole member views against sampled ones: bytes, rounds, detection, digests)."""

from __future__ import annotations

import argparse
import statistics

from gossip.config import Config
from simulations import experiments
from simulations.cli_args import Commands, flags, ints, workers_arg
from simulations.experiments import Setup, run_trials
from simulations.load import Load, run_load
from simulations.ratelimit import RateLimitRun, run_ratelimit
from simulations.sizes import heartbeats, probe, quiet_run, restart_history, variants


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


def add_load(sub: Commands) -> None:
    ld = sub.add_parser("load", help="traffic per node under a steady write load")
    ld.add_argument("--nodes", type=int, default=10)
    ld.add_argument("--rate", type=float, default=20.0, help="writes per second, cluster-wide")
    ld.add_argument("--seconds", type=float, default=30.0)
    ld.add_argument("--keys", type=int, default=500)
    ld.add_argument("--interval", type=float, default=1.0)
    ld.add_argument("--eager", type=lambda s: flags(s)[0], default=True, help="on or off")
    ld.add_argument("--loss", type=float, default=0.0)
    ld.add_argument("--loss-per", choices=["message", "exchange"], default="message")
    ld.add_argument("--seed", type=int, default=1)
    ld.set_defaults(run=cmd_load)


def add_ratelimit(sub: Commands) -> None:
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


def add_sizes(sub: Commands) -> None:
    z = sub.add_parser("sizes", help="whole views against sampled ones: bytes, rounds, detection, digests")
    z.add_argument("--view-size", type=int, default=0, help="the 'after' view size (default: the config's)")
    z.add_argument("--only", type=_variants, default=["before", "after"], help="before, after or both")
    z.add_argument("--probe-nodes", type=ints, default=[100, 1000, 10000])
    z.add_argument("--sim-nodes", type=ints, default=[100], help="full simulator runs")
    z.add_argument("--sim-seconds", type=float, default=60.0)
    z.add_argument("--heartbeat-nodes", type=ints, default=[100, 1000], help="membership-only runs")
    z.add_argument("--rounds", type=int, default=600, help="fault-free rounds of the membership-only runs")
    z.add_argument("--before-full-up-to", type=int, default=100,
                   help="above this N the 'before' membership run has --before-rounds (whole views are slow)")
    z.add_argument("--before-rounds", type=int, default=60)
    z.add_argument("--crash-timeout", type=int, default=900, help="rounds (seconds) to wait for detection")
    z.add_argument("--converge-nodes", type=ints, default=[100])
    z.add_argument("--trials", type=int, default=20)
    z.add_argument("--restarts", type=int, default=200, help="0: no digest history")
    z.add_argument("--seed", type=int, default=1)
    workers_arg(z)
    z.set_defaults(run=cmd_sizes)
