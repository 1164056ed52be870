"""A chaos run replayed against the real core in virtual time (`python -m chaos --replay-sim
RUN_DIR`): the same six nodes on the same three hosts, the run's fault schedule and the
client's operations at their times, then the heal, agreement and the chaos checker's
verdict. A failure found on real processes becomes a deterministic, seconds-long test.

How the run maps onto the simulator (simulations/engine.py):

- Nodes and settings: `n1`..`n6`, two a host, each with every other as a seed, the
  settings the suite starts them with (`--interval`, `--max-offset`, the cluster id, the
  node's defaults for the rest) and a data directory saved every second (`SAVE_EVERY` of
  node/server/pump.py) and on a clean stop. Time 0 of the run is the moment every node sees
  every other alive, as in the real run.
- Partitions (`halves`, `isolate`, `bridge`) block every message between their two sides,
  both ways. `one_way` blocks both ways too: over TCP a host that drops what it receives
  from another breaks the handshake of the requests it sends there as well, so no request
  crosses either way. `loss` makes a lossy link into the host's nodes: each message from
  another host is lost with the rule's probability (the nodes of one host talk over the
  loopback, which the rule does not touch). Messages are not packets: TCP would resend a
  lost packet, so the real loss costs time more often than whole requests.
- `skew` restarts the host's nodes as the suite does (a clean stop: goodbye, last
  snapshot; then a start from the data directory) with their clock that far off, and
  again with the true clock at its end (or at the heal).
- `kill` is a crash and a restart from the data directory as last saved (at most a
  second old); `kill_wipe` a crash and a restart empty; `pause` a crash and a restart with
  the state it had (the process kept it; its peers' requests fail at once here, where a
  stopped process lets them time out); `rotate` changes nothing here.
- A stopped node comes back when the history shows it answering again: between the last
  read that failed (nothing answered) and the first request it acknowledged after its
  restart step, in the middle (`START` after the step if the history does not show it).
- Every acknowledged or unanswered write and delete is applied on its node at the time
  its answer came (`end`); each acknowledged read is read again there. An operation whose
  node is down in the replay is not applied (counted in `not_replayed`, and judged as
  refused). Refused operations wrote nothing.
- The heal lifts every cut, lossy link and skew (restarting the skewed nodes), brings the
  stopped nodes back, and the replay waits for agreement as the harness does.

The judge is `chaos.history.check` on the replay's own timestamps and the nodes' final
values, with the kill evidence of chaos/evidence.py computed for the replay's kills.
Only observable behaviour is used: the Simulation API and each node's `read`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from chaos import faults
from chaos.evidence import Evidence, kill_evidence
from chaos.faults import Fault
from chaos.history import Verdict, check, in_run, load
from chaos.ops import Op
from chaos.setup import Setup
from gossip.config import Config
from gossip.store import JSON
from simulations.engine import Simulation
from simulations.network import NetworkModel
from simulations.timeline import to_us

START = 1.0  # seconds a restarted node takes to answer when the history does not say
STOP = 0.1  # seconds from a clean stop's goodbye to the process's end
SETTLE = 2.0  # seconds the replay keeps running after agreement, to see that it holds
AGREEMENT_DEADLINE = 90.0  # the harness's (chaos.run), in virtual seconds
NETWORK = NetworkModel(latency=0.002, latency_tail=0.001)  # HTTP between namespaces: milliseconds


@dataclass
class Replay:
    """One run's replay; `go()` plays it and returns the verdict."""

    setup: Setup
    plan: list[Fault]
    ops: list[Op]
    heal_at: float  # seconds since time 0 at which the harness healed
    seed: int | str = 0
    trace: bool = False
    agree_within: float = AGREEMENT_DEADLINE  # virtual seconds after the heal
    sim: Simulation = field(init=False)
    t0: float = 0.0  # virtual seconds at which the run's time 0 falls
    data: dict[str, bytes | None] = field(default_factory=dict)  # each node's data directory
    lives: dict[str, int] = field(default_factory=dict)  # process starts per node (for its saver)
    paused: set[str] = field(default_factory=set)
    skews: dict[int, float] = field(default_factory=dict)  # host -> seconds its clock is off
    kills: list[tuple[str, float, bool]] = field(default_factory=list)  # node, run time, wiped
    replayed: list[Op] = field(default_factory=list)  # the history as the replay wrote it
    not_replayed: list[Op] = field(default_factory=list)  # acknowledged, but its node was down here
    agreement: float | None = None  # virtual seconds from the heal to equal states
    verdict: Verdict | None = None
    log: list[str] = field(default_factory=list)  # what was done, when (run time)

    @property
    def names(self) -> list[str]:
        return self.setup.names

    def config(self) -> Config:
        setup = self.setup
        config = Config(cluster_id="chaos", gossip_interval=setup.interval, max_offset=setup.max_offset)
        if setup.probe_interval:
            config = config.replace(probe_interval=setup.probe_interval, probe_timeout=setup.probe_timeout)
        return config

    # -- the whole replay ---------------------------------------------------------------------

    def go(self) -> Verdict:
        self.sim = Simulation(self.config(), NETWORK, self.seed, trace=self.trace, trace_limit=1_000_000)
        sim = self.sim
        for name in self.names:
            sim.add_node(name)
        for name in self.names:  # started again at once: a restart's seeds may name any node
            sim.crash(name)
            sim.restart(name, keep_state=False, seeds=[n for n in self.names if n != name])
            self.data[name] = None
            self._saver(name)
        took = sim.wait_for(self._all_alive, 60.0)
        if took is None:
            raise RuntimeError("the simulated nodes never all saw each other alive")
        self.t0 = sim.now
        self._note(f"every node saw every other alive after {took:.2f} s (virtual)")
        for i, fault in enumerate(self.plan):
            self._schedule(fault, f"f{i}")
        for op in self.ops:
            self._at(op.end, lambda op=op: self._apply(op))  # type: ignore[misc]
        sim.run_until(self.t0 + self.heal_at)
        self._heal()
        agreed = sim.wait_for(sim.converged, self.agree_within)
        if agreed is not None:
            sim.run_for(SETTLE)
            self.agreement = agreed if sim.converged() else None
        self._note("agreement after " + (f"{self.agreement:.2f} s" if self.agreement is not None else "none"))
        self.verdict = check(self.replayed, self.finals(), self.evidence())
        return self.verdict

    def finals(self) -> dict[str, dict[str, JSON]]:
        """Each node's live values of every key the history touched."""
        keys = sorted({op.key for op in self.ops})
        found: dict[str, dict[str, JSON]] = {}
        for name in self.names:
            node = self.sim.nodes[name]
            now = self.sim.node_ms(node)
            values = {key: entry.value for key in keys if (entry := node.protocol.read(key, now)) is not None}
            found[name] = values
        return found

    def evidence(self) -> list[Evidence]:
        return kill_evidence(self.kills, self.plan, self.setup, self.replayed)

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds of the run: virtual time since time 0."""
        return self.sim.now - self.t0

    def _at(self, run_time: float, action: Callable[[], None]) -> None:
        self.sim.at(to_us(self.t0 + run_time), action)

    def _note(self, text: str) -> None:
        self.log.append(f"{self.now() if self.t0 else 0.0:7.3f} s  {text}")
        self.sim.note(f"replay: {text}")

    def _all_alive(self) -> bool:
        return all(self.sim.status(a, b) == "alive" for a in self.names for b in self.names if a != b)

    # -- processes ------------------------------------------------------------------------------

    def _saver(self, name: str) -> None:
        """A snapshot every SAVE_EVERY seconds of this process's life, as the node's saver
        loop writes it (the saver of a paused process waits with it)."""
        life = self.lives[name] = self.lives.get(name, 0) + 1

        def save() -> None:
            if self.lives[name] != life:
                return
            if self.sim.nodes[name].up:
                self.data[name] = self.sim.save(name)
            self.sim.after(self.setup.save_every, save)

        self.sim.after(self.setup.save_every, save)

    def _running(self, name: str) -> bool:
        return self.sim.nodes[name].up and name not in self.paused

    def _kill(self, name: str, wipe: bool) -> None:
        if self.sim.nodes[name].up:
            self.sim.crash(name)
        self.paused.discard(name)
        self.lives[name] += 1  # the saver dies with the process
        if wipe:
            self.data[name] = None
        self.kills.append((name, self.now(), wipe))
        self._note(f"kill -9 {name}" + (", data directory wiped" if wipe else ""))

    def _stop_cleanly(self, name: str) -> None:
        """SIGTERM: goodbye to every peer, then the last snapshot and the end."""
        sim = self.sim
        if name in self.paused:
            self._resume(name)
        if not sim.nodes[name].up:
            return
        sim.leave(name)
        self.lives[name] += 1

        def end() -> None:
            if sim.nodes[name].up:
                self.data[name] = sim.save(name)
                sim.crash(name)

        sim.after(STOP, end)

    def _start(self, name: str, step_at: float) -> None:
        """Start the node from its data directory when the history shows it back."""
        at = self._back_up(name, step_at)

        def start() -> None:
            node = self.sim.nodes[name]
            if node.up:
                return
            node.offset_ms = round(self.skews.get(self.setup.host_of(name), 0.0) * 1000)
            seeds = [n for n in self.names if n != name]
            saved = self.data[name]
            if saved is None:
                self.sim.restart(name, keep_state=False, seeds=seeds)
            else:
                self.sim.restart(name, keep_state=True, new_life=True, snapshot=saved, seeds=seeds)
            self._saver(name)
            self._note(f"{name} started" + (" empty" if saved is None else " from its data directory")
                       + (f", clock {node.offset_ms:+d} ms" if node.offset_ms else ""))

        self._at(max(at, self.now() + STOP), start)

    def _back_up(self, name: str, step_at: float) -> float:
        """When the node answered again after a (re)start at `step_at`, by the history.
        It was up by the start of the first request it acknowledged after one it did not
        (a clean stop may still answer a little while; without a failure, after STOP),
        and down at the end of the last read that failed before that (a read fails only
        when nothing answers: a failed write may be a refusal of a running node). The
        replay takes the middle; START after the step if the history does not say."""
        mine = [op for op in self.ops if op.node == name and op.start >= step_at]
        gone = next((i for i, op in enumerate(mine) if op.outcome != "ok"), None)
        after = mine[gone:] if gone is not None else [op for op in mine if op.start >= step_at + STOP]
        back = next((op for op in after if op.outcome == "ok"), None)
        if back is None:
            return step_at + START
        down = [op.end for op in after if op.kind == "read" and op.outcome == "fail" and op.end <= back.start]
        return (max(down, default=step_at + STOP) + back.start) / 2

    def _pause(self, name: str) -> None:
        if self._running(name):
            self.sim.crash(name)
            self.paused.add(name)
            self._note(f"SIGSTOP {name}")

    def _resume(self, name: str) -> None:
        if name in self.paused:
            self.paused.discard(name)
            self.sim.restart(name, keep_state=True)
            self._note(f"SIGCONT {name}")

    def _reclock(self, host: int, skew: float) -> None:
        """Restart the host's nodes with its clock `skew` seconds off, as the suite does."""
        self.skews[host] = skew
        step_at = self.now()
        self._note(f"host h{host} clock {skew:+.2f} s: its nodes restarted")
        for name in self.setup.on_host(host):
            self._stop_cleanly(name)
            self._start(name, step_at)

    # -- the schedule -----------------------------------------------------------------------------

    def _schedule(self, f: Fault, chain: str) -> None:
        sim, hosts = self.sim, self.setup

        def nodes(side: Sequence[int]) -> list[str]:
            return [n for h in side for n in hosts.on_host(h)]

        def begin_end(begin: Callable[[], None], end: Callable[[], None]) -> None:
            def first() -> None:
                self._note(f"begin {f.describe()}")
                begin()

            def last() -> None:
                self._note(f"end {f.kind}")
                end()

            self._at(f.start, first)
            self._at(f.end, last)

        if f.kind in ("halves", "isolate", "bridge", "one_way"):
            a, b = nodes(f.sides[0]), nodes(f.sides[1])

            def split() -> None:
                sim.block(f"{chain}>", a, b)
                sim.block(f"{chain}<", b, a)

            def join() -> None:
                sim.heal(f"{chain}>")
                sim.heal(f"{chain}<")

            begin_end(split, join)
        elif f.kind == "loss":
            group = frozenset(sim.nodes[n].address for n in nodes(f.sides[0]))
            begin_end(lambda: sim.net.lose(chain, group, f.amount / 100), lambda: sim.heal(chain))
        elif f.kind == "skew":
            host = f.sides[0][0]
            begin_end(lambda: self._reclock(host, f.amount), lambda: self._reclock(host, 0.0))
        elif f.kind in ("kill", "kill_wipe"):
            begin_end(lambda: self._kill(f.node, f.kind == "kill_wipe"), lambda: self._start(f.node, f.end))
        elif f.kind == "pause":
            begin_end(lambda: self._pause(f.node), lambda: self._resume(f.node))
        # rotate: the simulator has no keys; nothing to do

    def _heal(self) -> None:
        """Rules gone, paused nodes continued, skewed hosts restarted on the true clock,
        stopped nodes started: the harness's heal."""
        sim = self.sim
        self._note("heal: rules flushed, clocks true, every node running")
        for name in [*sim.net.cuts, *sim.net.blocks, *sim.net.lossy]:
            sim.heal(name)
        for name in sorted(self.paused):
            self._resume(name)
        skewed = [h for h, s in self.skews.items() if s]
        self.skews.clear()
        at = self.now()
        for host in skewed:
            for name in self.setup.on_host(host):
                self._stop_cleanly(name)
        for name in self.names:
            if not sim.nodes[name].up or self.setup.host_of(name) in skewed:
                self._start(name, at)
        sim.run_for(STOP + START)

    # -- the client -------------------------------------------------------------------------------

    def _apply(self, op: Op) -> None:
        node = self.sim.nodes[op.node]
        if op.outcome == "fail" or (op.kind == "read" and op.outcome != "ok"):
            self.replayed.append(op)
            return
        if not node.up:
            if op.outcome == "ok" and op.kind != "read":
                self.not_replayed.append(op)
            self.replayed.append(replace(op, outcome="fail", ts=None, writer=None))
            return
        if op.kind == "read":
            entry = node.protocol.read(op.key, self.sim.node_ms(node))
            self.replayed.append(replace(op, value=None if entry is None else entry.value))
            return
        if op.kind == "write":
            assert op.value is not None
            written = self.sim.write(op.node, op.key, op.value)
        else:
            written = self.sim.delete(op.node, op.key)
        stamp = (written.ts.wall, written.ts.counter)
        self.replayed.append(replace(op, outcome="ok", ts=stamp, writer=written.node))


def heal_time(run_dir: Path, plan: Sequence[Fault], ops: Sequence[Op]) -> float:
    """When the harness healed (events.txt says; else the end of the schedule or of the load)."""
    events = run_dir / "events.txt"
    if events.exists():
        for line in events.read_text().splitlines():
            if found := re.match(r"\s*([\d.]+) s\s+heal:", line):
                return float(found.group(1))
    return max([f.end for f in plan] + [op.end for op in ops])


def replay(run_dir: Path, seed: int | str | None = None, trace: bool = False,
           agree_within: float = AGREEMENT_DEADLINE) -> Replay:
    """Load a run directory and replay it; `seed` for the simulator (default: the run's)."""
    setup = Setup.load(run_dir)
    plan = faults.load(run_dir / "schedule.json")
    ops = load(in_run(run_dir))
    r = Replay(setup, plan, ops, heal_time(run_dir, plan, ops), setup.seed if seed is None else seed, trace,
               agree_within)
    r.go()
    return r
