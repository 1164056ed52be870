"""`python -m scripts.flood`: the command line (scripts/flood/__init__.py says what it does)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import scripts.flood
from scripts.flood.run import run_flood


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.flood", description=scripts.flood.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10_000, help="adversarial requests to send")
    p.add_argument("--nodes", type=int, default=2, help="cluster size, 1 to 3 (node n1 is flooded)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = p.parse_args(argv)
    result = run_flood(args.requests, args.nodes, args.concurrency, args.seed, args.timeout)
    print(result.table())
    if result.unexpected:
        print("\nunexpected answers, with a sample detail:")
        for name, statuses in result.unexpected.items():
            for status in statuses:
                sample = result.by_kind[name].sample.get(status, "")
                print(f"  {name}: {status} x{statuses[status]}: {sample}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
