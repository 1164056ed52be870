"""Run-once jobs: a periodic job that runs in one node of the cluster each period.

    @state.singleton("cleanup", every=60)
    async def cleanup() -> None: ...

Ticks are aligned to wall-clock multiples of `every` (tick n starts at n * every seconds
since the epoch), so every node agrees which tick it is. At each tick every node computes
the job's owner by rendezvous hashing (the highest hash of job name and member id) over
the members it sees alive or suspect, itself included, and only the owner runs it. It
first records the tick under `_gossip/job/<name>`, and a node skips a tick that record
shows done already.

What that gives, and what it does not:
- In a healthy cluster whose members agree on who is up, each tick runs on exactly one node.
- When the owner leaves, the others see it gone at once and the next tick runs elsewhere.
  When it dies, the ticks until it is found dead are missed: failure detection, 2 to 5 s
  on a few nodes with direct probes every second (R23), about 18 gossip intervals with
  phi alone. A member seen suspect still owns its jobs, so a false suspicion (a node
  slow for a moment) does not run them twice. Whoever owns the job in the dead owner's
  place takes over the tick in whose period it finds the owner dead, at once (it looks
  every LATE_CHECK_MS), if no record shows that tick done: the tick runs late rather than
  a period later.
- Around a change of members (a node joining, or one paused and back), two nodes may
  briefly disagree on the owner: a tick may run twice (the record prevents it only if it
  arrived in time) or be missed.
- During a partition each side has its own owner, so each side runs the job (from the
  tick in whose period one side finds the other dead: the cut-off owner ran it, and the
  other side, which cannot see its record, runs it late).
- A node with seeds that has met no member yet runs no jobs.
- A job that raises is logged and runs again at the next tick; a job that outlasts its
  period skips the ticks it overran. Clocks more than a tick apart break the agreement.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

import anyio

from gossip.errors import GossipError, InvalidKey, InvalidValue
from gossip.limits import check_key
from gossip.namespaces import RESERVED
from node.recipes.background import TaskHost
from node.server.local_state import LocalState
from node.server.views import Views

log = logging.getLogger("gossip.node")

PREFIX = RESERVED + "job/"
Job = Callable[[], Awaitable[None]]

_tick: ContextVar[int] = ContextVar("tick")
# How often a node that does not own a tick looks, during the tick's period, whether the
# owner has been found dead (then it may take the tick over: Jobs._owns). Not one that left:
# its goodbye may arrive before the record of the tick it ran just before it left.
LATE_CHECK_MS = 100


def current_tick() -> int:
    """Inside a job: the tick being run (wall-clock seconds // every)."""
    return _tick.get()


def _score(job: str, member: str) -> bytes:
    return hashlib.blake2b(f"{job}\0{member}".encode(), digest_size=16).digest()


def rendezvous_owner(job: str, members: Iterable[str]) -> str:
    """The member with the highest hash of (job, member id): any node with the same member
    set picks the same one, and removing another member never moves the job."""
    return max(members, key=lambda member: (_score(job, member), member))


@dataclass(frozen=True)
class _Singleton:
    name: str
    every_ms: int
    run: Job


class Jobs:
    def __init__(self, local: LocalState, views: Views, tasks: TaskHost) -> None:
        """`local`: where the ticks are recorded; `views`: who is serving."""
        self._local, self._views, self._tasks = local, views, tasks
        self._jobs: dict[str, _Singleton] = {}

    def singleton(self, name: str, every: float) -> Callable[[Job], Job]:
        """A decorator: run the async function once per `every` seconds in the cluster."""
        if not isinstance(name, str) or not name:
            raise InvalidKey(f"job name must be a non-empty string, got {name!r}")
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not math.isfinite(every) \
                or every < 0.001:
            raise InvalidValue(f"job {name!r}: every must be a number of seconds >= 0.001, got {every!r}")
        if name in self._jobs:
            raise InvalidKey(f"job {name!r} is already registered on this node")
        try:
            check_key(self.key(name), self._local.protocol.config)
        except InvalidKey as exc:
            raise InvalidKey(f"job name {name!r} makes no valid key: {exc}") from None

        def register(run: Job) -> Job:
            if not inspect.iscoroutinefunction(run):
                raise InvalidValue(f"job {name!r}: an async function is needed, got {run!r}")
            if name in self._jobs:
                raise InvalidKey(f"job {name!r} is already registered on this node")
            job = self._jobs[name] = _Singleton(name, round(every * 1000), run)
            self._tasks.start(lambda: self._loop(job))
            return run

        return register

    def key(self, name: str) -> str:
        return PREFIX + name

    def owner(self, name: str) -> str | None:
        """Who runs `name` now in this node's view; None while this node has met no
        member yet (it has seeds to join through) or has left."""
        serving = self._views.serving()
        return None if serving is None else rendezvous_owner(name, serving)

    def last_tick(self, name: str) -> int:
        """The last tick some node recorded running (as far as this node knows), or -1."""
        entry = self._local.entry(self.key(name))
        value = None if entry is None else entry.value
        tick = value.get("tick") if isinstance(value, dict) else None
        return tick if type(tick) is int else -1

    async def _loop(self, job: _Singleton) -> None:
        tick = _now_ms() // job.every_ms + 1
        while True:
            await anyio.sleep(max(0, tick * job.every_ms - _now_ms()) / 1000)
            if await self._owns(job, tick) and self.last_tick(job.name) < tick:
                await self._run(job, tick)
                tick = _now_ms() // job.every_ms + 1  # (a run outlasting its period skips those it overran)
            else:  # the next tick; after a stall (the process stopped), the one of the period we are in
                tick = max(tick + 1, _now_ms() // job.every_ms)

    async def _owns(self, job: _Singleton, tick: int) -> bool:
        """Whether this node runs `tick`: it is the owner at the tick, or it becomes the
        owner because the tick's owner is found dead before the tick's period ends
        (that owner most likely died before the tick, so the tick was never run: it runs
        late rather than a period later)."""
        owner, end = self.owner(job.name), (tick + 1) * job.every_ms
        while owner is not None and owner != self._local.id:
            left = end - _now_ms()
            if left <= 0:
                return False
            await anyio.sleep(min(LATE_CHECK_MS, left) / 1000)
            if self._views.found_dead(owner):
                owner = self.owner(job.name)
        return owner is not None

    async def _run(self, job: _Singleton, tick: int) -> None:
        try:
            self._local.write_reserved(self.key(job.name), {"tick": tick, "node": self._local.id})
        except GossipError as exc:
            log.warning("%s: job %r: could not record tick %d: %s", self._local.id, job.name, tick, exc)
        token = _tick.set(tick)
        try:
            await job.run()
        except Exception:
            log.exception("%s: job %r failed at tick %d; it runs again next tick", self._local.id,
                          job.name, tick)
        finally:
            _tick.reset(token)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
