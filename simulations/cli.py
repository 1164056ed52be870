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
  gossip-sim detect --nodes 10,100,1000
  gossip-sim sizes --probe-nodes 100,1000,10000 --heartbeat-nodes 100,1000

Output on stdout depends only on the arguments and the seed (scale also prints wall time).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gossip.version import __version__
from simulations import cli_convergence, cli_detection, cli_faults, cli_workloads


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gossip-sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    # Each command with its arguments lives in the module of its kind (in the order of --help).
    cli_convergence.add_converge(sub)
    cli_convergence.add_sweep(sub)
    cli_faults.add_scenario(sub)
    cli_convergence.add_scale(sub)
    cli_workloads.add_load(sub)
    cli_workloads.add_ratelimit(sub)
    cli_faults.add_check(sub)
    cli_faults.add_routine(sub)
    cli_detection.add_detect(sub)
    cli_workloads.add_sizes(sub)
    cli_convergence.add_theory(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
