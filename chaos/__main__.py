"""`python -m chaos [--seeds A-B | --seed N] [--quick] [--shrink] [--report PATH]`: the
fault-injection suite against real nodes in network namespaces (needs root, `ip`, `nft` and
libfaketime). `--replay-sim RUN_DIR` replays a finished run in the simulator, `--rejudge
RUN_DIR...` judges finished runs again; neither needs root."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from chaos import faults
from chaos.hosts import ROOT
from chaos.rejudge import rejudge
from chaos.report import write
from chaos.run import FULL, QUICK, Result, Size, run_seed, schedule_for, unavailable
from chaos.simreplay import replay


def seeds(text: str) -> list[int]:
    """ "7" or "0-19"."""
    try:
        first, _, last = text.partition("-")
        found = list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are N or A-B (like 0-19), not {text!r}") from None
    if not found:
        raise argparse.ArgumentTypeError(f"no seed in {text!r}: the range runs backwards")
    return found


TURN = 2.0  # seconds between seeds


def shrink(seed: int, size: Size, out: Path, plan: list[faults.Fault]) -> list[faults.Fault]:
    """Drop faults one at a time while the run still fails."""
    i = 0
    while i < len(plan):
        trial = plan[:i] + plan[i + 1 :]
        print(f"-- shrink: without {plan[i].describe()}")
        if not run_seed(seed, size, out / "shrink", trial).ok:
            plan = trial
        else:
            i += 1
    return plan


def replay_sim(run_dir: Path, seed: int | None, trace: Path | None) -> int:
    r = replay(run_dir, seed, trace=trace is not None)
    verdict = r.verdict
    assert verdict is not None
    print("\n".join(r.log))
    print(f"replayed {len(r.ops)} operations ({verdict.acknowledged} acknowledged writes and deletes; "
          f"{len(r.not_replayed)} not replayed: their node was down), simulator seed {r.seed}")
    for line in [f"{v.kind} {v.key}: {v.detail}" for v in verdict.violations][:40]:
        print(f"  {line}")
    for text, n in sorted(verdict.excused_by.items()):
        print(f"  excused: {n} by {text}")
    if trace is not None:
        trace.write_text("\n".join(r.sim.trace) + "\n")
        print(f"trace: {trace}")
    agreed = "none" if r.agreement is None else f"{r.agreement:.2f} s"
    print(f"{'ok' if verdict.ok else 'FAILED'}: {len(verdict.violations)} violations, "
          f"{len(verdict.excused)} excused losses, agreement {agreed} after the heal (virtual)")
    return 0 if verdict.ok and r.agreement is not None else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seeds", type=seeds, help="a seed range, like 0-19 (default: 0)")
    which.add_argument("--seed", type=int, help="replay one seed")
    p.add_argument("--quick", action="store_true",
                   help=f"short runs: {QUICK.length:.0f} s with one fault of each kind, instead of "
                        f"{FULL.length:.0f} s with {FULL.faults} drawn faults")
    p.add_argument("--out", type=Path, default=ROOT / "chaos-runs", help="where run directories go")
    p.add_argument("--report", type=Path, help="write the Markdown report here (docs/RELIABILITY.md)")
    p.add_argument("--shrink", action="store_true", help="shrink each failing seed's schedule")
    p.add_argument("--from-runs", action="store_true",
                   help="run nothing: write the report from the seeds' result.json in --out")
    p.add_argument("--replay-sim", type=Path, metavar="RUN_DIR",
                   help="run nothing: replay that run's faults and history in the simulator")
    p.add_argument("--sim-seed", type=int, help="--replay-sim: the simulator's seed (default: the run's)")
    p.add_argument("--trace", type=Path, metavar="PATH",
                   help="--replay-sim: write the simulator's trace here")
    p.add_argument("--rejudge", type=Path, nargs="+", metavar="RUN_DIR",
                   help="run nothing: judge finished runs again, with the kill evidence untimed "
                        "and with windows")
    args = p.parse_args(argv)
    if args.replay_sim is not None:
        return replay_sim(args.replay_sim, args.sim_seed, args.trace)
    if args.rejudge is not None:
        for run_dir in args.rejudge:
            print("\n".join(rejudge(run_dir).lines()))
        return 0
    if (reason := unavailable()) is not None:
        p.error(f"cannot run here: {reason}")
    for sig in (signal.SIGINT, signal.SIGTERM):  # (a background job ignores SIGINT unless told)
        signal.signal(sig, _interrupt)  # so that the run's clean-up stops its nodes and hosts
    size = QUICK if args.quick else FULL
    chosen = [args.seed] if args.seed is not None else (args.seeds or [0])
    results: list[Result] = []
    for seed in chosen:
        if args.from_runs:
            if not (saved := args.out / f"seed-{seed}" / "result.json").exists():
                p.error(f"--from-runs: no {saved}: run seed {seed} first")
            results.append(Result.load(saved))
            continue
        if results:
            time.sleep(TURN)  # between seeds the namespace lock is free: whoever waits for it gets it
        r = run_seed(seed, size, args.out)
        results.append(r)
        verdict = "ok" if r.ok else f"FAILED ({len(r.problems())} problems)"
        print(f"   seed {seed}: {verdict}; {r.ops} ops, {r.acknowledged} acknowledged, {r.unknown} unknown, "
              f"{len(r.excused)} excused, heal {r.heal:.1f} s, agreement "
              f"{'none' if r.agreement is None else f'{r.agreement:.2f} s'}", flush=True)
        for line in r.problems()[:20]:
            print(f"     {line}")
        if not r.ok and args.shrink:
            small = shrink(seed, size, args.out, schedule_for(seed, size))
            faults.save(small, args.out / f"seed-{seed}" / "shrunk.json")
            print(f"   seed {seed} still fails with {len(small)} faults:")
            for f in small:
                print(f"     {f.describe()}")
    if args.report is not None:
        shown = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
        shown = shown.replace(" --from-runs", "")
        write(args.report, results, size, f"python -m chaos {shown}", sum(r.seconds for r in results))
        print(f"report: {args.report}")
    failing = [r.seed for r in results if not r.ok]
    print(
        f"{len(results) - len(failing)} of {len(results)} seeds passed"
        + (f"; failing: {failing}" if failing else "")
    )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
