"""One seed's run: hosts and nodes up, the client and the fault schedule side by side, then
the heal, the wait for agreement, the nodes' final values, and the checker's verdict. The
run directory keeps the schedule, the history, the verdict, the nodes' logs and a result
row (result.json)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos import client, faults
from chaos.evidence import Evidence, kill_evidence
from chaos.faults import Fault
from chaos.history import check, dump
from chaos.hosts import FAKETIME_LIB, Hosts, available
from chaos.nodes import TOKEN, Fleet, KeyRing
from chaos.ops import Op
from chaos.setup import Setup
from gossip.auth import key_id

RESET_LINE = "reset: our state predates"  # what a node logs when it resets (node/server/local_state.py)
AGREEMENT_DEADLINE = 90.0
HEAL_DEADLINE = 60.0  # seconds for every node to run and answer again after the schedule
SLOW_STEP = 2.0  # seconds: a fault step that takes longer says so in events.txt (a slow stop, say)
ROTATION_PATIENCE = 3.0  # seconds a rotation step keeps trying a node that does not answer


@dataclass(frozen=True)
class Size:
    hosts: int = 3
    nodes_per_host: int = 2
    length: float = 45.0  # seconds of faults and client load
    faults: int = 8  # drawn faults, the rotation not counted
    workers: int = 4
    interval: float = 0.25
    max_offset: float = 2.0
    each_kind_once: bool = False  # one fault of each kind instead of `faults` drawn ones

    def setup(self, seed: int) -> Setup:
        """Odd seeds also probe members directly (R23), at the gossip interval."""
        return Setup(seed=seed, hosts=self.hosts, nodes_per_host=self.nodes_per_host, interval=self.interval,
                     max_offset=self.max_offset, probe_interval=self.interval if seed % 2 else 0.0)


FULL = Size()
QUICK = Size(length=20.0, workers=3, each_kind_once=True)


@dataclass
class Result:
    seed: int
    faults: list[str]  # the kinds in the schedule, in order
    ops: int
    acknowledged: int  # writes and deletes
    unknown: int
    violations: list[str]
    excused: list[str]
    evidence: dict[str, str]  # node -> why it may have lost acknowledged writes (with which window)
    heal: float  # seconds the heal took: rules flushed, every node running and keyed
    agreement: float | None  # seconds from the heal's start to equal digests; None: not within the deadline
    crashed: dict[str, int] = field(default_factory=dict)  # nodes that exited unbidden -> exit code
    seconds: float = 0.0  # the whole run, set-up and tear-down included (the wait for the lock not)
    excused_by: dict[str, int] = field(default_factory=dict)  # evidence -> losses it excused

    @property
    def ok(self) -> bool:
        return not self.violations and self.agreement is not None and not self.crashed

    def problems(self) -> list[str]:
        found = list(self.violations)
        if self.agreement is None:
            found.append(f"no agreement within {AGREEMENT_DEADLINE:.0f} s of the heal")
        found += [f"{node} exited by itself with code {code}" for node, code in self.crashed.items()]
        return found

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Result:
        return cls(**json.loads(path.read_text()))


def unavailable() -> str | None:
    """What this machine lacks for a run, or None."""
    if (reason := available()) is not None:
        return reason
    if shutil.which("nft") is None:
        return "no `nft` command (apt-get install nftables)"
    if not FAKETIME_LIB.exists():
        return f"no {FAKETIME_LIB} (apt-get install faketime)"
    return None


def schedule_for(seed: int, size: Size) -> list[Fault]:
    names = [f"n{i}" for i in range(1, size.hosts * size.nodes_per_host + 1)]
    node_host = {n: (i // size.nodes_per_host) + 1 for i, n in enumerate(names)}
    return faults.draw(
        seed, size.hosts, names, node_host, size.length, size.faults, size.max_offset, size.each_kind_once
    )


def run_seed(seed: int, size: Size, out: Path, schedule: Sequence[Fault] | None = None) -> Result:
    """Run one seed (its drawn schedule, or `schedule`) with the results in out/seed-<seed>."""
    run_dir = out / f"seed-{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    plan = list(schedule) if schedule is not None else schedule_for(seed, size)
    faults.save(plan, run_dir / "schedule.json")
    setup = size.setup(seed)
    setup.save(run_dir)
    probing = f", probes every {setup.probe_interval:g} s" if setup.probe_interval else ""
    print(f"== seed {seed}: {len(plan)} faults over {size.length:.0f} s{probing}")
    for f in plan:
        print(f"   {f.describe()}")
    with Hosts(count=size.hosts) as hosts:  # the namespace lock is held for this seed only
        started = time.monotonic()
        fleet = Fleet(hosts, run_dir, KeyRing(secrets.token_hex(32)), setup)
        try:
            result = asyncio.run(Run(fleet, seed, size, plan, run_dir).go())
        finally:
            fleet.close()
    result.seconds = round(time.monotonic() - started, 1)
    result.save(run_dir / "result.json")
    return result


@dataclass
class Run:
    fleet: Fleet
    seed: int
    size: Size
    plan: list[Fault]
    run_dir: Path
    t0: float = 0.0
    events: list[str] = field(default_factory=list)  # what was done, when
    kills: list[tuple[str, float, bool]] = field(default_factory=list)  # node, time, data wiped
    http: httpx.AsyncClient = field(init=False)  # the harness's own client (admin calls, polls)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.fleet.nodes]

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def go(self) -> Result:
        async with httpx.AsyncClient(timeout=2.0, headers={"authorization": f"Bearer {TOKEN}"}) as http:
            self.http = http
            for name in self.names:
                self.fleet.start(name)
            took = await until(self._all_alive, 60, "every node to see every other alive")
            self.t0 = time.monotonic()
            self.events.append(f"   0.0 s  every node saw every other alive, {took:.1f} s after the start")
            stop = asyncio.Event()
            urls = {name: self.fleet.url(name) for name in self.names}
            load = asyncio.create_task(client.run(urls, self.seed, self.size.workers, self.t0, stop))
            await self._play()
            stop.set()
            ops = await load
            crashed = self.fleet.exited()
            heal_began = time.monotonic()
            await self._heal()
            healed = time.monotonic()
            try:
                agreement: float | None = await until(self._agree, AGREEMENT_DEADLINE, "equal digests") + (
                    healed - heal_began
                )
            except TimeoutError:
                agreement = None
            self.events.append(
                f"{time.monotonic() - self.t0:6.1f} s  healed at {healed - self.t0:.1f} s; "
                + (f"agreement after {agreement:.2f} s" if agreement is not None else "no agreement")
            )
            finals = {name: (await self._get(name, "/get"))["values"] for name in self.names}
        evidence = self._evidence(ops)
        verdict = check(ops, finals, evidence)
        said: dict[str, list[str]] = {}
        for e in evidence:
            said.setdefault(e.node, []).append(e.describe().removeprefix(f"{e.node}: "))
        dump(ops, self.run_dir / "history.jsonl")
        (self.run_dir / "events.txt").write_text("\n".join(self.events) + "\n")
        (self.run_dir / "verdict.json").write_text(
            json.dumps(
                {
                    "ok": verdict.ok,
                    **dataclasses.asdict(verdict),
                    "finals": finals,
                    "evidence": [dataclasses.asdict(e) for e in evidence],
                },
                indent=1,
            )
        )
        return Result(
            seed=self.seed, faults=[f.kind for f in self.plan], ops=len(ops),
            acknowledged=verdict.acknowledged, unknown=verdict.unknown,
            violations=[f"{v.kind} {v.key}: {v.detail}" for v in verdict.violations],
            excused=[f"{v.kind} {v.key}: {v.detail}" for v in verdict.excused],
            evidence={node: "; ".join(lines) for node, lines in said.items()}, excused_by=verdict.excused_by,
            heal=round(healed - heal_began, 2), agreement=None if agreement is None else round(agreement, 2),
            crashed=crashed,
        )

    # -- the schedule ---------------------------------------------------------------------

    async def _play(self) -> None:
        """Each fault on its own: its steps at their times, whatever the others do."""
        await asyncio.gather(*(self._play_one(f, f"f{i}") for i, f in enumerate(self.plan)))
        await self._at(self.size.length)

    async def _play_one(self, fault: Fault, chain: str) -> None:
        for at, what, action in self._steps(fault, chain):
            await self._at(at)
            began = self.now()
            self.events.append(f"{began:6.1f} s  {what}")
            await action()
            if (took := self.now() - began) > SLOW_STEP:
                self.events.append(f"{self.now():6.1f} s  ({what}: took {took:.1f} s)")

    async def _at(self, at: float) -> None:
        if (wait := at - self.now()) > 0:
            await asyncio.sleep(wait)  # the schedule's own timing, not a wait for a condition

    def _steps(self, f: Fault, chain: str) -> list[tuple[float, str, Callable[[], Awaitable[None]]]]:
        """(time, description, action) of what begins and ends the fault."""
        hosts, fleet = self.fleet.hosts, self.fleet

        def net(begin: Callable[[], None]) -> list[tuple[float, str, Callable[[], Awaitable[None]]]]:
            def end() -> None:
                for h in {h for side in f.sides for h in side}:
                    hosts.lift(h, chain)

            return [(f.start, f"begin {f.describe()}", lambda: asyncio.to_thread(begin)),
                    (f.end, f"end {f.kind}", lambda: asyncio.to_thread(end))]

        if f.kind in ("halves", "isolate", "bridge"):

            def split() -> None:
                for h in f.sides[0]:
                    hosts.drop_from(h, f.sides[1], chain)
                for h in f.sides[1]:
                    hosts.drop_from(h, f.sides[0], chain)

            return net(split)
        if f.kind == "one_way":
            return net(lambda: hosts.drop_from(f.sides[0][0], f.sides[1], chain))
        if f.kind == "loss":
            return net(lambda: hosts.lose(f.sides[0][0], int(f.amount), chain))
        if f.kind == "skew":
            host = f.sides[0][0]

            def reclock(skew: float) -> Callable[[], Awaitable[None]]:
                async def restart() -> None:
                    fleet.skews[host] = skew
                    await asyncio.gather(
                        *(asyncio.to_thread(fleet.restart, name) for name in fleet.on_host(host))
                    )

                return restart

            return [(f.start, f"begin {f.describe()}", reclock(f.amount)), (f.end, "end skew", reclock(0.0))]
        if f.kind in ("kill", "kill_wipe"):
            wipe = f.kind == "kill_wipe"

            def kill() -> None:
                fleet.kill(f.node, wipe)
                self.kills.append((f.node, self.now(), wipe))

            return [(f.start, f"begin {f.describe()}", lambda: asyncio.to_thread(kill)),
                    (f.end, f"restart {f.node}", lambda: asyncio.to_thread(fleet.start, f.node))]
        if f.kind == "pause":
            return [(f.start, f"begin {f.describe()}", lambda: asyncio.to_thread(fleet.pause, f.node)),
                    (f.end, f"SIGCONT {f.node}",
                     lambda: asyncio.to_thread(fleet.resume, f.node))]
        old, new = fleet.keys.primary, secrets.token_hex(32)
        stages = [KeyRing(old, (new,)), KeyRing(new, (old,)), KeyRing(new)]
        times = [f.start, f.start + f.duration / 2, f.end]
        labels = ["rotation: new key installed", "rotation: new key primary", "rotation: old key dropped"]
        return [
            (t, label, self._rotation_step(ring))
            for t, label, ring in zip(times, labels, stages, strict=True)
        ]

    def _rotation_step(self, ring: KeyRing) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            self.fleet.keys = ring  # what nodes (re)started from now on are given
            running = [name for name in self.names if self.fleet.running(name)]
            done = await asyncio.gather(
                *(self._sync_keys(name, patience=ROTATION_PATIENCE) for name in running)
            )
            if failed := [name for name, ok in zip(running, done, strict=True) if not ok]:
                self.events.append(
                    f"{self.now():6.1f} s  key ring not changed on {', '.join(failed)} "
                    f"within {ROTATION_PATIENCE:.0f} s (left to the heal)"
                )

        return step

    async def _sync_keys(self, name: str, patience: float = 0.0) -> bool:
        """Make the node's key ring the fleet's current one, trying for `patience` seconds
        (a node starting up does not answer yet); False if it did not answer."""
        try:
            await until(lambda: self._sync_keys_once(name), patience, f"{name} to take the key ring")
        except TimeoutError:
            return False
        return True

    async def _sync_keys_once(self, name: str) -> bool:
        want = self.fleet.keys
        url = self.fleet.url(name) + "/admin/keys"
        ids = {key_id(bytes.fromhex(k)): k for k in (want.primary, *want.accepted)}
        try:
            ring = (await self.http.get(url)).raise_for_status().json()
            for kid, key in ids.items():
                if kid not in ring["keys"]:
                    (await self.http.post(url, json={"key": key})).raise_for_status()
            primary = key_id(bytes.fromhex(want.primary))
            if ring["primary"] != primary:
                (await self.http.post(f"{url}/{primary}/primary")).raise_for_status()
            for kid in ring["keys"]:
                if kid not in ids:
                    (await self.http.delete(f"{url}/{kid}")).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    # -- the heal and the end -------------------------------------------------------------

    async def _heal(self) -> None:
        """Everything back to normal: rules gone, clocks true, every node running with the
        cluster's key ring."""
        fleet = self.fleet
        await asyncio.to_thread(fleet.hosts.lift_all)
        for name in list(fleet.paused):
            fleet.resume(name)
        skewed = [h for h, s in fleet.skews.items() if s]
        fleet.skews.clear()
        down = [
            name for name in self.names if name not in fleet.procs or fleet.procs[name].poll() is not None
        ]
        again = down + [name for name in self.names if fleet.spec(name).host in skewed and name not in down]
        await asyncio.gather(*(asyncio.to_thread(fleet.restart, name) for name in again))
        self.events.append(f"{self.now():6.1f} s  heal: rules flushed, clocks true, every node running")

        async def synced() -> bool:
            return all([await self._sync_keys(name) for name in self.names])

        await until(synced, HEAL_DEADLINE, "every node to take the cluster's key ring")

    async def _get(self, name: str, path: str) -> Any:
        return (await self.http.get(self.fleet.url(name) + path)).raise_for_status().json()

    async def _all_alive(self) -> bool:
        try:
            for name in self.names:
                members = (await self._get(name, "/members"))["members"]
                if sorted(m["id"] for m in members if m["status"] == "alive") != sorted(self.names):
                    return False
        except httpx.HTTPError:
            return False
        return True

    async def _agree(self) -> bool:
        try:
            return len({(await self._get(name, "/digest"))["digest"] for name in self.names}) == 1
        except httpx.HTTPError:
            return False

    def _evidence(self, ops: Sequence[Op]) -> list[Evidence]:
        """Why a node may have lost acknowledged writes, as the contract allows: it reset
        (its log says so: any of its writes), or it was killed -9 (the writes it could not
        have passed on or saved yet, chaos/evidence.py)."""
        found = []
        for name in self.names:
            log = self.fleet.log(name).read_text(errors="replace")
            found += [Evidence(name, line.strip()) for line in log.splitlines() if RESET_LINE in line]
        return found + kill_evidence(self.kills, self.plan, self.size.setup(self.seed), ops)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll `check` until it holds; the seconds it took. TimeoutError at the deadline."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started
