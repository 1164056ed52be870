"""docs/RELIABILITY.md from a campaign's result rows."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from chaos.client import KEYS
from chaos.faults import DURATION, KINDS
from chaos.run import AGREEMENT_DEADLINE, ROTATION_PATIENCE, SNAPSHOT_WINDOW, Result, Size

WHAT = {  # fault kind -> what it does, for the summary table
    "halves": "partition: two groups of hosts, each dropping what the other sends",
    "isolate": "partition: one host against the rest",
    "bridge": "partition: two groups that do not see each other, and one host that sees both",
    "one_way": "one host drops what it receives from another (what it sends still leaves)",
    "loss": "one host drops 10, 20, 30 or 50 % of the cluster packets it receives, at random",
    "skew": "one host's clock off by 0.2-0.8 or 1.5-3 x --max-offset, ahead or behind (nodes restarted)",
    "kill": "kill -9 one node, restart it with its data directory",
    "kill_wipe": "kill -9 one node, restart it with its data directory wiped",
    "pause": "SIGSTOP one node, then SIGCONT",
    "rotate": "key rotation: new key installed, made primary, old key dropped, on every node",
}


def faults_cell(kinds: Sequence[str]) -> str:
    counts = Counter(kinds)
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(counts.items()))


def excused_cell(r: Result) -> str:
    if not r.excused:
        return "0"
    reasons = sorted({f"{node}: {_reason(text)}" for node, text in r.evidence.items()
                      if any(text in line for line in r.excused)})  # fmt: skip
    return f"{len(r.excused)} ({'; '.join(reasons)})"


def _reason(evidence: str) -> str:
    found = []
    if "wiped" in evidence:
        found.append("data wiped")
    if "predates" in evidence:
        found.append("reset")
    if "writes acknowledged" in evidence:
        found.append("killed right after writes")
    return ", ".join(found) or evidence


def write(path: Path, results: Sequence[Result], size: Size, command: str, took: float) -> None:
    failing = [r for r in results if not r.ok]
    rows = [
        f"| {r.seed} | {faults_cell(r.faults)} | {r.ops} | {r.acknowledged} | {r.unknown} | "
        f"{len(r.problems())} | {excused_cell(r)} | {r.heal:.1f} | "
        f"{'none' if r.agreement is None else f'{r.agreement:.2f}'} |"
        for r in results
    ]
    summary = []
    for kind in KINDS:
        with_it = [r for r in results if kind in r.faults]
        if with_it:
            summary.append(
                f"| {kind} | {WHAT[kind]} | {sum(r.faults.count(kind) for r in with_it)} | {len(with_it)} | "
                f"{sum(not r.ok for r in with_it)} | {sum(len(r.excused) for r in with_it)} |"
            )
    details = []
    for r in failing:
        details.append(f"\n### Seed {r.seed}\n")
        details += [f"- {line}" for line in r.problems()[:10]]
        if len(r.problems()) > 10:
            details.append(f"- ... and {len(r.problems()) - 10} more (see the run directory's verdict.json)")
    agreements = [r.agreement for r in results if r.agreement is not None]
    ops = sum(r.ops for r in results)
    text = f"""# Reliability: the fault-injection suite

Made by `{command}` on {time.strftime("%Y-%m-%d")}, in {took / 60:.0f} minutes:
{len(results)} seeds, {len(failing)} failing. {ops} operations in all, of which
{sum(r.acknowledged for r in results)} acknowledged writes and deletes. Agreement after the
heal took {_span(agreements)}.

## How it works

`make chaos` (`python -m chaos --seeds 0-19 --report docs/RELIABILITY.md`, the `chaos/`
package; root, `ip`, `nft` and libfaketime) runs real `python -m node` processes and breaks
their network, clocks and processes while a client records everything it was told.

- **Hosts.** {size.hosts} Linux network namespaces on one bridge, the cluster network
  10.77.1.0/24, with {size.nodes_per_host} nodes each ({size.hosts * size.nodes_per_host} in
  all, gossip every {size.interval} s, `--max-offset {size.max_offset}`, signed gossip, an
  api token, a `--data-dir` each). Every host also sits on an admin network, 10.77.2.0/24,
  which the client and the harness use: faults never cut them off.
- **Client.** {size.workers} concurrent workers (asyncio and httpx) send writes, deletes
  and reads of {KEYS} keys, so that keys collide, to random nodes, with a 1 s timeout (0.5 s to
  connect). Each operation is recorded with its start, end and outcome: ok (acknowledged),
  fail (refused, or the connection never opened: nothing was written) or unknown (a timeout
  or a broken connection after sending: it may have been applied). Each write sends a value
  of its own.
- **Faults.** A schedule of {size.faults} faults is drawn from `random.Random(seed)` over
  {size.length:.0f} s, plus one key rotation in the middle of the run. Each fault lasts a
  bounded time (2 to 10 s). Network faults are nftables rules in the hosts' namespaces on
  the cluster interface, and may overlap; faults on processes never overlap on one node.
  The kinds are in the summary below.
- **Heal.** After the schedule every rule is flushed, paused nodes continue, skewed nodes
  restart on the true clock (with their data), stopped nodes restart, and every node gets the
  cluster's key ring. The harness then polls every node's `/digest` until all are equal
  (at most {AGREEMENT_DEADLINE:.0f} s) and records how long that took.
- **Checker.** `chaos.history.check` judges the history against each node's final live
  values by last-writer-wins on the acknowledged timestamps: every node must hold the value
  of the acknowledged operation with the highest timestamp (or that of an operation whose
  outcome is unknown), all nodes the same values, and no read a value nobody had sent. A
  loss counts as excused only with evidence that the node's state went away as
  [PROTOCOL.md](PROTOCOL.md) ("What can be lost, and when") allows: the node logged a reset,
  its data directory was wiped on purpose, or it was killed -9 within
  {SNAPSHOT_WINDOW} s of acknowledging writes (its snapshot is written once a second).
- **Failure.** A seed fails on any violation, on no agreement, or on a node that exited by
  itself; the command then exits non-zero and prints the violations.

A rotation step tries each running node for up to {ROTATION_PATIENCE:.0f} s; a node that
was down or paused meanwhile is left with the old ring, refuses or is refused until the
heal, and that is one of the faults this suite plays.

## Results

Heal: seconds from the end of the schedule until every node ran again with the cluster's
key ring. Agreement: seconds from the end of the schedule until all digests were equal
(the heal included).

| seed | faults | ops | acknowledged | unknown | violations | excused losses | heal (s) | agreement (s) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

## By fault kind

| kind | what it does | times | seeds | failing seeds | excused losses in those seeds |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(summary)}

Durations (s): {", ".join(f"{k} {lo:.0f}-{hi:.0f}" for k, (lo, hi) in DURATION.items() if k != "rotate")}.
{_failures(details)}
## Replaying a seed

A schedule depends on the seed alone, so `python -m chaos --seed N` replays seed N's faults
(the timing of the client's requests differs from run to run). Each run leaves
`chaos-runs/seed-N/`: `schedule.json`, `events.txt` (each fault step as it was done),
`history.jsonl` (one operation a line), `verdict.json` (violations, excused losses, each
node's final values, the evidence), `result.json` (the row above) and `logs/` (each node's
output). `python -m chaos --seed N --shrink` drops faults from a failing schedule one at a
time while it still fails, and prints the smallest schedule found. `python -m chaos --quick`
is the short run `make test` does (tests/test_chaos.py).
"""
    path.write_text(text)


def _span(values: Sequence[float]) -> str:
    if not values:
        return "no time: no seed agreed"
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.2f} s at the median and {ordered[-1]:.2f} s at most"


def _failures(details: list[str]) -> str:
    if not details:
        return "\nNo seed failed.\n"
    return "\n## Failing seeds\n" + "\n".join(details) + "\n"
