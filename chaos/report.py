"""docs/RELIABILITY.md from a campaign's result rows."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from chaos.client import KEYS, ONCE
from chaos.evidence import RESTART
from chaos.faults import DURATION, KINDS
from chaos.run import AGREEMENT_DEADLINE, QUICK, RESET_LINE, ROTATION_PATIENCE, Result, Size

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
    """How many losses were excused, and by which evidence."""
    if not r.excused:
        return "0"
    if not r.excused_by:  # a result row written before evidence had windows
        reasons = sorted({f"{node}: {_reason(text)}" for node, text in r.evidence.items()
                          if any(text in line for line in r.excused)})
        return f"{len(r.excused)} ({'; '.join(reasons)})"
    by = [f"{n} by {_short(text)}" for text, n in sorted(r.excused_by.items())]
    return f"{len(r.excused)} ({'; '.join(by)})"


def _short(evidence: str) -> str:
    node, _, what = evidence.partition(": ")
    return f"{node}: reset" if RESET_LINE in what else evidence


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
    acknowledged = sum(r.acknowledged for r in results)
    nodes = size.hosts * size.nodes_per_host
    setup = size.setup(0)
    spread = f"{setup.request_timeout:g} + {setup.interval:g} x {1 + setup.jitter:g} = {setup.spread:g} s"
    text = f"""# Reliability: the fault-injection suite

Made by `{command}` on {time.strftime("%Y-%m-%d")}, {_minutes(took)} of runs: {len(results)}
seeds, {len(failing)} failing; {ops} operations, of which {acknowledged} acknowledged writes
and deletes. {_agreement(agreements)}

## How it works

`make chaos` runs `python -m chaos --seeds 0-19 --report docs/RELIABILITY.md` (the `chaos/`
package; it needs root, `ip`, `nft` and libfaketime). It starts real `python -m node`
processes, breaks their network, clocks and processes, and records everything a client
was told.

- **Hosts.** {size.hosts} Linux network namespaces on one bridge (the cluster network,
  10.77.1.0/24), {size.nodes_per_host} nodes on each, {nodes} in all. Gossip runs every
  {size.interval} s with `--max-offset {size.max_offset}` (odd seeds also probe members
  directly, `--probe-interval {size.interval}`), signed with a cluster key; writes
  need an api token; each node keeps a `--data-dir`. Each host is also on an admin network
  (10.77.2.0/24) that the client and the harness use, so faults never cut them off.
- **Client.** {size.workers} concurrent workers (asyncio and httpx) send writes, deletes
  and reads to random nodes, with a 1 s timeout (0.5 s to connect). Most writes, and all
  deletes and reads, go to {KEYS} shared keys, so that they collide. The other {ONCE:.0%} of
  the writes each go to a key of their own that nothing else touches: on a shared key only
  the last write can be seen lost, on these every acknowledged write must survive. Every
  write sends a value of its own. Each operation is recorded with its start, its end and
  its outcome: ok (acknowledged), fail (refused, or the connection never opened: nothing
  was written) or unknown (a timeout or a broken connection after sending: it may have
  been applied).
- **Faults.** {size.faults} faults are drawn from `random.Random(seed)` over
  {size.length:.0f} s, plus one key rotation between 40 % and 60 % of the run. Each fault
  lasts 2 to 10 s. Network faults are nftables rules in the hosts' namespaces, on the
  cluster interface, and may overlap. Faults on processes never overlap on one node.
- **Heal.** After the schedule, every rule is flushed, paused nodes continue, skewed nodes
  restart on the true clock (with their data), killed nodes restart, and every node gets
  the cluster's key ring. The harness then polls every node's `/digest` until all are equal
  (for at most {AGREEMENT_DEADLINE:.0f} s).
- **Checker.** `chaos.history.check` compares the history with each node's final live
  values by last-writer-wins on the acknowledged timestamps. Every node must hold the value
  of the acknowledged operation with the highest timestamp, or that of an operation whose
  outcome is unknown; all nodes must hold the same values; no read may return a value
  nobody had sent. A loss is excused only with evidence that the node's state went away as
  [PROTOCOL.md](PROTOCOL.md) ("What can be lost, and when") allows, and only for the writes
  that evidence covers: a node that logged a reset lost any write only it held; a node
  killed -9 lost only the writes it could not have passed on yet (see "Excused losses").
- **Failure.** A seed fails on any violation, on no agreement, or on a node that exited by
  itself. The command then prints the problems and exits with status 1.

A rotation step tries each running node for up to {ROTATION_PATIENCE:.0f} s. A node that is
down or paused meanwhile keeps the old ring, refuses or is refused until the heal: one more
fault.

## Results

Heal: seconds from the end of the schedule until every node ran again with the cluster's
key ring. Agreement: seconds from the end of the schedule until all digests were equal
(the heal included).

| seed | faults | ops | acknowledged | unknown | violations | excused losses | heal (s) | agreement (s) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

## Excused losses

A kill -9 excuses the loss of an acknowledged write of that node only if the write was
acknowledged (its answer's time) within the kill's window, from the contract: a write lives
on the node that took it until a push or an exchange carries it to another node.

- The node passes a write on within `request timeout + interval x (1 + jitter)` of
  reaching another host, here {spread}: the push leaves at once; if it is
  lost it fails after the request timeout, and the next round's exchange carries the write
  anyway. So a kill at time K excuses the writes acknowledged after the last moment from
  which the node had that long in a row of reaching another host: after K - {setup.spread:g} s
  when nothing cut it off.
- While the node is *away* the window reaches back: its host cut off from every other host
  (partitions, a one-way drop, whose TCP needs both ways, packet loss at either end, its
  clock more than `--max-offset` ahead of theirs, until their clocks reach the timestamps
  it wrote), or the node itself stopped, paused or restarting ({RESTART:g} s after a restart
  step). A node cut off keeps its writes to itself for as long as the cut lasts.
- A kill that kept the data directory loses only what the last snapshot missed: the window
  is cut to the {setup.unsaved:g} s before the kill (a snapshot every {setup.save_every:g} s when the
  state changed, and up to {setup.unsaved - setup.save_every:g} s to write it). A wipe loses the snapshot too.

`chaos/evidence.py` computes the windows; verdict.json lists each piece of evidence with its
window, and the results table says how many losses each one excused.

## By fault kind

| kind | what it does | times | seeds | failing seeds | excused losses in those seeds |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(summary)}

Durations (s): {", ".join(f"{k} {lo:.0f}-{hi:.0f}" for k, (lo, hi) in DURATION.items() if k != "rotate")}.
{_failures(details)}

## What it does not see

- Only final states and reads are checked. A node that served an old value for a while
  and then caught up passes, as last-writer-wins allows.
- A write lost on a shared key shows only if it was that key's last acknowledged write;
  the once-written keys are there for that.
- A host's two nodes reach each other whatever the faults (the loopback), so a write taken
  on an isolated host also lives on its other node; a kill's window does not ask whether
  that node lost its state too. Packet loss counts as a cut for the window, though TCP
  gets most requests through it, later.
- A reset excuses the losses of any write the node took, whatever its age.
- Runs replay their faults, not their timing: the client's requests, and so the history,
  differ from run to run. The machine's 2 cores are shared with the nodes and the client.
  A run replayed in the simulator (below) is deterministic, with the simulator's timing.

## Replaying a seed

A schedule depends on the seed alone, so `python -m chaos --seed N` replays seed N's faults.
Each run leaves `chaos-runs/seed-N/`: `schedule.json`, `setup.json` (the nodes' settings),
`events.txt` (each fault step when it was done), `history.jsonl` (one operation a line),
`verdict.json` (violations, excused losses, each node's final values, the evidence and
its windows), `result.json` (the row above) and `logs/` (each node's output).
`python -m chaos --seed N --shrink` drops faults from a failing schedule one at a time
while it still fails, and prints the smallest schedule found.
`python -m chaos --quick` plays one fault of each kind within {QUICK.length:.0f} s, like
the first test in `tests/chaos/test_chaos.py`, which `make test` runs.

`python -m chaos --replay-sim chaos-runs/seed-N` replays a finished run against the same
core in virtual time (`chaos/simreplay.py`, no root): the same nodes on the same hosts with
the same settings, each fault mapped onto the simulator (partitions and one-way drops as
blocks both ways, packet loss as a lossy link into the host, skew and kill -9 as the
suite's restarts, from the last snapshot or empty, a pause as a crash that keeps the
state), each write and delete of the history applied at its acknowledgment time, then the
heal and the same checker. A failure on real processes becomes a test of seconds
(`tests/chaos/test_chaos_replay.py` replays one); `--sim-seed` picks the simulator's seed and
`--trace PATH` writes its trace. `python -m chaos --rejudge RUN_DIR...` judges finished
runs again, once with the kill evidence untimed as it used to be and once with the
windows, and lists the losses the windows no longer excuse.
"""
    path.write_text(text)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"


def _agreement(seconds: Sequence[float]) -> str:
    if not seconds:
        return "No seed reached agreement."
    ordered = sorted(seconds)
    return (f"All nodes agreed {ordered[len(ordered) // 2]:.2f} s after the end of the schedule at the "
            f"median, {ordered[-1]:.2f} s at most.")


def _failures(details: list[str]) -> str:
    if not details:
        return "\nNo seed failed."
    return "\n## Failing seeds\n" + "\n".join(details)
