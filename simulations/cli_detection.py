"""gossip-sim's command of failure detection: detect (direct probes, R23: a crash seen dead,
and false marks under loss, pauses and load, as the cluster grows; simulations/detection.py)."""

from __future__ import annotations

import argparse

from simulations import detection
from simulations.cli_args import Commands, ints

RUNS = ("crash", "lossy", "overloaded")


def cmd_detect(args: argparse.Namespace) -> int:
    """One CSV line per size and run: detection times, false marks, probe traffic, and the
    suspicion timeouts beside memberlist's."""
    print("nodes,run,gossip_rounds,median_s,p99_s,undetected,false_suspect,false_dead,probe_bytes_mean,"
          "probe_bytes_max,probes_per_node_s,probe_bytes_per_node_s,ours_timeout_s,memberlist_timeout_s,"
          "wall_s", flush=True)
    for nodes in args.nodes:
        rounds = nodes <= args.rounds_up_to
        ours = "{:.1f}-{:.1f}".format(*detection.ours_timeout(nodes))
        theirs = "{:.1f}-{:.1f}".format(*detection.memberlist_timeout(nodes))
        if "crash" in args.runs:
            r = detection.crash_run(nodes, args.seed, rounds)
            print(f"{nodes},crash,{int(rounds)},{r.median:.2f},{r.p99:.2f},{r.undetected},{r.marks.suspect},"
                  f"{r.marks.dead},{r.probe_bytes:.0f},{r.probe_max},{r.probes_per_node_s:.2f},"
                  f"{r.probe_bytes_per_node_s:.0f},{ours},{theirs},{r.wall:.0f}", flush=True)
        for kind in ("lossy", "overloaded"):
            if kind in args.runs:
                run = detection.lossy_run if kind == "lossy" else detection.overloaded_run
                f = run(nodes, args.minutes, args.seed, rounds)
                print(f"{nodes},{kind},{int(rounds)},,,,{f.marks.suspect},{f.marks.dead},,,,,{ours},{theirs},"
                      f"{f.wall:.0f}", flush=True)
    return 0


def _runs(text: str) -> list[str]:
    names = text.split(",")
    for name in names:
        if name not in RUNS:
            raise argparse.ArgumentTypeError(f"{name!r}: runs are {', '.join(RUNS)}")
    return names


def add_detect(sub: Commands) -> None:
    d = sub.add_parser("detect", help="direct probes: a crash seen dead, false marks under loss and load")
    d.add_argument("--nodes", type=ints, default=[10, 100, 1000])
    d.add_argument("--runs", type=_runs, default=list(RUNS),
                   help="any of crash, lossy, overloaded, comma-separated")
    d.add_argument("--minutes", type=float, default=10.0, help="virtual minutes of the lossy and overloaded")
    d.add_argument("--rounds-up-to", type=int, default=100,
                   help="above this N the nodes run their probes alone, without gossip rounds (and phi)")
    d.add_argument("--seed", type=int, default=1)
    d.set_defaults(run=cmd_detect)
