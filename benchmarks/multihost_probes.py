"""Direct probes on many hosts: N=50 real nodes over 5 network-namespace hosts (10 per
host), phi alone (probes off, the default; docs/PROTOCOL.md R17) and direct probes every
second (R23, R24) side by side in one run, each on a cluster of its own, through the same
faults one after the other: a node killed with SIGKILL (the seconds until each other node
shows it dead), another stopped with SIGSTOP for 2 s (dead marks of it: none wanted), and
10 % packet loss on every host's cluster link (dead marks of live members: none wanted);
with the probes' traffic and the idle CPU per node before the faults."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.netns_cluster import Node, answers, cluster, dead_marks, sent_by_kind, wait_joined
from benchmarks.report import Section
from benchmarks.system import cpu_seconds
from chaos.hosts import Hosts, available
from gossip.config import Config
from node.tools.propagation import percentile

# The configurations compared, by the node options that make them.
CONFIGS: dict[str, list[str]] = {
    "phi alone (probes off, default)": [],
    "probes every 1 s": ["--probe-interval", "1"],
}
LOOK = 0.2  # seconds between one observer's looks at its /members while a crash is awaited
STOP_LOOK = 0.5  # the same while a node is stopped and started again (a minute of that)
LOSS_LOOK = 1.0  # the same under packet loss (a minute of it)
KILL_DEADLINE = 60.0  # phi alone needs about 18 to 26 s at N = 50 with the default view
STOP_S = 2.0
# A stop of 2 s is suspected only if a probe of the node starts in its first second (about
# one a second reach it at any N): about half the time. So the node is stopped again and again.
STOPS = 5
STOP_GAP = 8.0  # seconds from a SIGCONT to the next SIGSTOP
AFTER_S = 10.0  # watched after a stop or the loss ends: a dead mark may come late
LOSS_PERCENT = 10
LOSS_CHAIN = "bench_loss"


@dataclass
class Watch:
    """What the observers' /members showed over a while: how many times a member turned
    suspect in an observer's view, and the (observer, member) pairs ever shown dead."""
    suspect_turns: int = 0
    dead: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Result:
    nodes: int
    joined_s: float
    cpu: list[float]  # % of a core per node, idle
    probes_per_node_s: float  # probe messages sent, per node and second, idle
    probe_bytes_per_node_s: float
    seen_dead_s: list[float]  # per observer that saw the killed node dead
    undetected: int  # observers that had not when the deadline passed
    stopped_s: float  # the longest of its stops
    stop_dead: int  # dead marks of the stopped node (or of anyone alive) while and after it was
    stop_suspect: int
    stop_refuted: int | None  # suspicions of themselves the nodes refuted (probes only)
    loss_dead: int  # dead marks of live members while and after the loss
    loss_suspect: int
    loss_refuted: int | None
    false_dead: int  # dead marks of live members over the whole run, in the logs


async def _members(client: httpx.AsyncClient, node: Node) -> list[dict[str, object]] | None:
    try:
        r = await client.get(node.url + "/members")
    except httpx.HTTPError:
        return None
    return list(r.json()["members"]) if r.status_code == 200 else None


async def _time_to_dead(client: httpx.AsyncClient, observers: Sequence[Node], victim: str,
                        since: float, deadline: float) -> list[float | None]:
    """For each observer, seconds from `since` until its /members shows `victim` dead
    (at the answer's arrival: an upper bound, to within one look), None past `deadline`."""

    async def one(node: Node) -> float | None:
        while time.monotonic() - since < deadline:
            members = await _members(client, node)
            if any(m["id"] == victim and m["status"] == "dead" for m in members or ()):
                return time.monotonic() - since
            await asyncio.sleep(LOOK)
        return None

    return list(await asyncio.gather(*(one(n) for n in observers)))


async def _watch(client: httpx.AsyncClient, observers: Sequence[Node], seconds: float, look: float,
                 known_dead: str) -> Watch:
    """Every observer's /members, every `look` seconds for `seconds`; `known_dead` (the
    killed node) is left out."""
    seen = Watch()

    async def one(node: Node) -> None:
        suspected: set[str] = set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now_suspected: set[str] = set()
            for m in await _members(client, node) or ():
                member, status = str(m["id"]), m["status"]
                if member == known_dead:
                    continue
                if status == "suspect":
                    now_suspected.add(member)
                elif status == "dead":
                    seen.dead.add((node.name, member))
            seen.suspect_turns += len(now_suspected - suspected)
            suspected = now_suspected
            await asyncio.sleep(look)

    await asyncio.gather(*(one(n) for n in observers))
    return seen


async def _incarnations(client: httpx.AsyncClient, nodes: Sequence[Node]) -> int | None:
    """The sum of the nodes' own incarnations (each refutation of a suspicion of itself
    adds one; R23), None with probes off."""
    total = 0
    for r in await answers(client, nodes, "/members", patience=10.0):
        if r is None:
            raise RuntimeError("a node did not answer /members")
        me = next(m for m in r.json()["members"] if m["self"])
        if "incarnation" not in me:
            return None
        total += int(me["incarnation"])
    return total


def _signal(node: Node, sig: signal.Signals) -> None:
    os.killpg(node.proc.pid, sig)  # (the node's session: start_node gives it one)


async def _measure(hosts: Hosts, nodes: Sequence[Node], logs: str, idle_s: float, loss_s: float) -> Result:
    per_host = len(nodes) // hosts.count
    victim, sleeper = nodes[per_host + 1], nodes[2 * per_host + 2]  # neither the seed nor on its host
    live = [n for n in nodes if n is not victim]
    limits = httpx.Limits(max_connections=2 * len(nodes))
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        joined = await wait_joined(client, nodes, timeout=180)

        # Idle: CPU and the probes' traffic.
        (messages0, bytes0), t0 = await sent_by_kind(client, nodes), time.monotonic()
        cpu0 = [cpu_seconds(n.proc.pid) for n in nodes]
        await asyncio.sleep(idle_s)
        cpu1, t1 = [cpu_seconds(n.proc.pid) for n in nodes], time.monotonic()
        messages1, bytes1 = await sent_by_kind(client, nodes)
        per_node_s = len(nodes) * (t1 - t0)

        # A crash: SIGKILL, then every other node's /members until it shows the node dead.
        _signal(victim, signal.SIGKILL)
        killed = time.monotonic()
        victim.proc.wait(10)
        times = await _time_to_dead(client, live, victim.name, killed, KILL_DEADLINE)
        print(f"    {victim.name} killed: seen dead by {sum(t is not None for t in times)} of {len(live)}",
              flush=True)

        # Pauses: SIGSTOP for STOP_S, STOPS times, watched throughout and AFTER_S beyond.
        marks0, incarnations0 = dead_marks(logs, len(nodes)), await _incarnations(client, live)
        span = STOPS * STOP_S + (STOPS - 1) * STOP_GAP + AFTER_S
        watching = asyncio.ensure_future(_watch(client, live, span, STOP_LOOK, victim.name))
        stopped_s = 0.0
        for stop in range(STOPS):
            if stop:
                await asyncio.sleep(STOP_GAP)
            _signal(sleeper, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                await asyncio.sleep(STOP_S)
            finally:
                _signal(sleeper, signal.SIGCONT)
            stopped_s = max(stopped_s, time.monotonic() - stopped)
        stop_watch = await watching
        marks1 = dead_marks(logs, len(nodes))

        # Packet loss on every host's cluster link, watched throughout and AFTER_S beyond.
        incarnations1 = await _incarnations(client, live)
        watching = asyncio.ensure_future(_watch(client, live, loss_s + AFTER_S, LOSS_LOOK, victim.name))
        try:
            for host in range(1, hosts.count + 1):
                await asyncio.to_thread(hosts.lose, host, LOSS_PERCENT, LOSS_CHAIN)
            await asyncio.sleep(loss_s)
        finally:
            for host in range(1, hosts.count + 1):
                await asyncio.to_thread(hosts.lift, host, LOSS_CHAIN)
        loss_watch = await watching
        incarnations2 = await _incarnations(client, live)
        marks2 = dead_marks(logs, len(nodes))

    def of_live(marks: dict[str, int]) -> int:
        return sum(n for member, n in marks.items() if member != victim.name)

    def refuted(before: int | None, after: int | None) -> int | None:
        return None if before is None or after is None else after - before

    return Result(
        nodes=len(nodes), joined_s=joined,
        cpu=[(b - a) / (t1 - t0) * 100 for a, b in zip(cpu0, cpu1, strict=True)],
        probes_per_node_s=(messages1["probe"] - messages0["probe"]) / per_node_s,
        probe_bytes_per_node_s=(bytes1["probe"] - bytes0["probe"]) / per_node_s,
        seen_dead_s=[t for t in times if t is not None], undetected=sum(t is None for t in times),
        stopped_s=stopped_s,
        stop_dead=max(of_live(marks1 - marks0), len(stop_watch.dead)), stop_suspect=stop_watch.suspect_turns,
        stop_refuted=refuted(incarnations0, incarnations1),
        loss_dead=max(of_live(marks2 - marks1), len(loss_watch.dead)), loss_suspect=loss_watch.suspect_turns,
        loss_refuted=refuted(incarnations1, incarnations2),
        false_dead=of_live(dead_marks(logs, len(nodes))),
    )


def run(quick: bool, command: str, out_dir: Path) -> Section:
    count, per_host = (3, 4) if quick else (5, 10)
    idle_s, loss_s = (10.0, 30.0) if quick else (20.0, 60.0)
    if (reason := available()) is not None:
        raise RuntimeError(f"the many-hosts benchmark needs network namespaces: {reason}")
    results: dict[str, Result] = {}
    with Hosts(count) as hosts:
        for number, (label, options) in enumerate(CONFIGS.items()):
            logs = f"probes-config{number}"
            with cluster(hosts, per_host, options, logs) as nodes:
                print(f"  {label}: {len(nodes)} nodes on {count} hosts", flush=True)
                r = results[label] = asyncio.run(_measure(hosts, nodes, logs, idle_s, loss_s))
            print(f"  {label}: crash seen dead, median {_median(r.seen_dead_s)} s, {r.undetected} "
                  f"undetected; dead marks: stop {r.stop_dead}, loss {r.loss_dead}", flush=True)
    return _section(results, count, per_host, idle_s, loss_s, command)


def _turns(suspect: int, refuted: int | None) -> str:
    return f"{suspect}" if refuted is None else f"{suspect} ({refuted})"


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def _section(results: dict[str, Result], count: int, per_host: int, idle_s: float, loss_s: float,
             command: str) -> Section:
    n = count * per_host
    section = Section(
        "7. Many hosts: direct probes", command,
        f"N={n} nodes, {per_host} per host on {count} network-namespace hosts joined by one bridge (real "
        f"uvicorn processes, real HTTP, signed gossip), gossip interval {Config.gossip_interval:g} s, the "
        f"default view ({Config.view_size} members) and phi thresholds; each configuration on a fresh "
        f"cluster, once every node sees all alive: CPU and probe messages sent over {idle_s:.0f} s idle; "
        f"then one node (h2n1) killed with SIGKILL, each other node's /members read every "
        f"{LOOK * 1000:.0f} ms until it shows it dead (time at the answer: to within one read), for "
        f"{KILL_DEADLINE:.0f} s at most; then another (h3n2) stopped with SIGSTOP for {STOP_S:g} s, "
        f"{STOPS} times {STOP_GAP:g} s apart; then "
        f"{LOSS_PERCENT} % of the cluster packets each host receives dropped at random (nftables) for "
        f"{loss_s:.0f} s. Dead marks: lines `member X dead:` in the nodes' logs, or (observer, member) "
        f"pairs /members showed dead, whichever is more, the killed node left out, counted during the "
        f"fault and {AFTER_S:.0f} s after (stop: /members read every {STOP_LOOK:g} s; loss: every "
        f"{LOSS_LOOK:g} s); suspect turns: times a member turned suspect in an observer's /members read "
        f"so; refutations: increases of the nodes' own incarnations (R23).",
        ["configuration", "joined in", "idle CPU % per node", "probe msgs/s per node (B/s)",
         "kill -9: seen dead median / p99 / max s", "not seen dead",
         f"SIGSTOP {STOP_S:g} s x {STOPS}: dead marks",
         "suspect turns (refutations)", f"{LOSS_PERCENT} % loss: false dead marks",
         "suspect turns (refutations)", "live members marked dead, whole run"],
    )
    for label, r in results.items():
        seen = r.seen_dead_s
        crash = (f"{statistics.median(seen):.1f} / {percentile(seen, 99):.1f} / {max(seen):.1f}"
                 if seen else "-")
        section.rows.append([
            label, f"{r.joined_s:.0f} s", f"{statistics.mean(r.cpu):.2f}",
            f"{r.probes_per_node_s:.2f} ({r.probe_bytes_per_node_s:,.0f})", crash,
            f"{r.undetected} of {n - 1}", str(r.stop_dead), _turns(r.stop_suspect, r.stop_refuted),
            str(r.loss_dead), _turns(r.loss_suspect, r.loss_refuted), str(r.false_dead),
        ])
    for label, r in results.items():
        section.goals += [
            (f"{label}: a node killed with SIGKILL seen dead by all {n - 1} others within "
             f"{KILL_DEADLINE:.0f} s: {n - 1 - r.undetected} (median {_median(r.seen_dead_s)} s)",
             r.undetected == 0),
            (f"{label}: a node stopped {STOPS} times up to {r.stopped_s:.1f} s marked dead by nobody: "
             f"{r.stop_dead} marks",
             r.stop_dead == 0),
            (f"{label}: {LOSS_PERCENT} % loss for {loss_s:.0f} s, no live member marked dead: "
             f"{r.loss_dead} marks", r.loss_dead == 0),
        ]
    section.notes.append(
        f"The configurations run one after the other on the same hosts; the {n} nodes share the "
        "machine's cores with the benchmark's client (its reads of /members) and whatever else runs, "
        "so a mark may be the machine's (a node starved of CPU for seconds). The loss is of packets: "
        "TCP resends a lost one (after 200 ms at the least here), so far fewer gossip and probe "
        "messages are lost or late than the simulator's 10 % of messages."
    )
    return section


if __name__ == "__main__":
    print(run("--quick" in sys.argv, " ".join(sys.argv), Path("/tmp")).markdown())
