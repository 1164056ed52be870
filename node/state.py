"""SharedState: one node's shared state, as a dict-like face for request handlers, over the
parts that keep it, each in its room:

- node.server.local_state (LocalState): the core protocol behind the one lock, the reads
  and writes under it (keys, counters, rate limits), and the wake-up of the pusher;
- node.server.pump (Pump): the background loops (rounds, eager pushes, deferred counts,
  DNS seeds, snapshots), sending, acknowledged replication and the goodbye of a leave;
- node.server.inbox (Inbox, Signatures): whose gossip we take, each message handled,
  signatures;
- node.server.probing (ProbeLoop): direct probes (R23), with --probe-interval set;
- node.server.views (Views): members, stats and what /health and /metrics weigh;
- node.monitoring.health, node.monitoring.metrics and node.recipes.wiring (change
  streams, service registry, jobs), each given the parts it reads.

Reads never touch the network."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from gossip.auth import KeyRing
from gossip.codec import Codec
from gossip.counters import WindowCount
from gossip.membership import MemberEvent
from gossip.namespaces import is_reserved
from gossip.protocol import GossipProtocol
from gossip.ratelimit import Decision, Rate
from gossip.store import JSON, Entry, state_hash
from node.monitoring.health import HealthWatch
from node.monitoring.metrics import NodeMetrics
from node.recipes.jobs import Job
from node.recipes.registry import DEFAULT_TTL, Instance
from node.recipes.watch import DEFAULT_BUFFER, Watch
from node.recipes.wiring import Recipes
from node.server.clockcheck import ClockCheck
from node.server.dns_seeds import DnsSeeds, split_seeds
from node.server.inbox import Inbox, Signatures
from node.server.local_state import LocalState, TooFewPeers, refuse_reserved
from node.server.peerlog import PeerLog
from node.server.persistence import SnapshotFile
from node.server.probing import ProbeLoop
from node.server.pump import COUNTS_EVERY, SAVE_EVERY, Pump, ReplicationTimeout
from node.server.settings import Settings
from node.server.views import Views
from node.wire.traffic import Traffic
from node.wire.transport import HttpTransport, Transport, wall_ms

if TYPE_CHECKING:
    import httpx  # (an injected client's, for tests: a node on its own never loads httpx)

# (imported by name from here: the errors of aset(), the saver's period, the clock)
__all__ = ["COUNTS_EVERY", "SAVE_EVERY", "ReplicationTimeout", "SharedState", "TooFewPeers", "running_state",
           "wall_ms"]

_running: set[SharedState] = set()  # the states whose loops run in this process


def running_state() -> SharedState:
    """The one SharedState running in this process (for code built before the app starts,
    such as a `limits` storage); raises RuntimeError if none or several run."""
    if len(_running) != 1:
        raise RuntimeError(
            f"{len(_running) or 'no'} shared states run in this process: "
            + ("start the app with node.shared_state_lifespan()" if not _running else "pass one explicitly")
        )
    return next(iter(_running))


def _local_state(
    settings: Settings, codec: Codec, rng: random.Random, seeds: tuple[str, ...]
) -> tuple[LocalState, SnapshotFile | None]:
    """A node's protocol, restored from the snapshot in --data-dir if there is one, and its
    clock check; and the snapshot file."""
    config = settings.config
    protocol = GossipProtocol(
        config, settings.id, settings.address, rng, wall_ms(), seeds, tags=dict(settings.tags)
    )
    snapshots = SnapshotFile(Path(settings.data_dir), codec) if settings.data_dir else None
    saved = snapshots.load() if snapshots is not None else None
    if saved is not None:
        protocol.restore(saved, wall_ms())  # serve the old state before talking to anyone
    # Whether our clock is fit to acknowledge writes (node.server.clockcheck), told the time
    # stamped on every message; it judges our HLC too, which a snapshot may put ahead.
    clockcheck = ClockCheck(
        settings.address, config.max_offset, lambda: protocol.clock.last.wall,
        accept_anyway=settings.accept_writes_when_refused, wall_ms=wall_ms,
    )
    clockcheck.restored_wall = protocol.clock.last.wall if saved is not None else None
    clockcheck.expect(protocol.membership.seeds)
    return LocalState(protocol, clockcheck), snapshots


class SharedState:
    """One node's view of the shared state, and the loops that keep it in agreement.

    Safe to use from the event loop and from threads (FastAPI runs plain `def` routes in
    a thread pool): every touch of the protocol holds one lock, never across an await.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        dns: DnsSeeds | None = None,
    ) -> None:
        """`dns`: the DNS seeds of `settings`, looked up already (running_node does it
        first, so that a node whose names give only itself founds the cluster); without
        it, the first lookup comes a round after the start."""
        self.settings = settings
        self.config = settings.config
        self.codec = Codec(self.config)
        self.keyring: KeyRing | None = settings.keyring()
        url_seeds = split_seeds(settings.seeds)[0]
        self.dns = dns if dns is not None else settings.dns_seeds()
        seeds = (*url_seeds, *self.dns.addresses())
        self._local, snapshots = _local_state(settings, self.codec, rng or random.Random(), seeds)
        self.protocol, self.clockcheck = self._local.protocol, self._local.clockcheck
        self._signatures = Signatures(self.keyring, self.config, self._local.lock)
        self.traffic = Traffic()  # both ways: what we send and what we serve
        self.transport: Transport = HttpTransport(
            self.codec, client, self._signatures, self.traffic, self.clockcheck, settings.client_tls()
        )
        # -- what our exchanges met with (node.server.peerlog), sending, receiving, and the
        # views.
        self.peers = PeerLog()
        self._pump = Pump(
            self._local, self.transport, self.peers, self.config, self.dns, settings.dns_refresh,
            url_seeds, snapshots,
        )
        self._inbox = Inbox(
            self._local, self._signatures, self.codec, self.traffic, self.peers, settings.allow
        )
        self.rejected: Counter[str] = self._inbox.rejected  # refused gossip, by error type
        self._probing = ProbeLoop(self._local, self._signatures, self.codec, self.traffic, self.transport,
                                  self.rejected)
        self._views = Views(self._local, self._pump, self._inbox, self.traffic)
        # -- health (whether we take writes) and the /metrics registry (its lag histogram
        # follows merges from now on), then change streams, service registry, run-once jobs.
        self.health = HealthWatch(self)
        self.metrics = NodeMetrics(self)
        self._recipes = Recipes(self._local, self._views, self._pump)

    @property
    def id(self) -> str:
        return self.protocol.id

    @property
    def write_refusal(self) -> str | None:
        """Why this node takes no writes now (its clock, node.server.clockcheck), or None."""
        return self._local.write_refusal()

    async def writable(self) -> None:
        """Wait while a node just started has yet to compare its clock with another host's
        (its first round is under way): an interval and a request's timeout at most.
        Writes that come through here are then taken, or refused saying why."""
        await self.clockcheck.settled(self.config.gossip_interval + self.config.request_timeout)

    # -- the dict-like API (node.server.local_state) ----------------------------------------

    def entry(self, key: str) -> Entry | None:
        """The live entry for `key` (value, timestamp, writer), or None."""
        return self._local.entry(key)

    def get(self, key: str, default: JSON = None) -> JSON:
        entry = self._local.entry(key)
        return default if entry is None else entry.value

    def __getitem__(self, key: str) -> JSON:
        entry = self._local.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._local.entry(key) is not None

    def set(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        """Store `value` (any JSON value) under `key`, optionally expiring after `ttl`
        seconds; it spreads to every node in the background. Raises CallerError, or
        WritesRefused while our clock is unfit for writes (node.server.clockcheck, /health): the
        peers would refuse them, or it has not been compared with theirs yet."""
        return self._local.set(key, value, ttl)

    def write_reserved(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        """set() without the check that keeps users out of the reserved keys: for the
        project's own data (counters, registry, jobs)."""
        return self._local.write_reserved(key, value, ttl)

    async def aset(
        self, key: str, value: JSON, ttl: float | None = None, replicas: int = 0, timeout: float = 2.0
    ) -> Entry:
        """set(), and with `replicas` > 0 return only once that many peers hold the write
        (sent to them directly, trying further peers if some fail: a peer holds it when its
        digest says so), so it survives the loss of this node. Raises ReplicationTimeout,
        saying how many did, otherwise; the write stays stored here and spreads as usual
        either way."""
        refuse_reserved(key)
        await self.writable()
        entry, peers = self._local.write_for_replicas(key, value, ttl, replicas)
        await self._pump.replicate(entry, peers, replicas, timeout)
        return entry

    def __setitem__(self, key: str, value: JSON) -> None:
        self.set(key, value)

    def delete(self, key: str) -> Entry:
        """Delete `key` everywhere (a tombstone that wins over every older write)."""
        return self._local.delete(key)

    def delete_reserved(self, key: str) -> Entry:
        """delete() of one of the project's own keys."""
        return self._local.delete_reserved(key)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def snapshot(self) -> dict[str, JSON]:
        """Every live key and its value, as a plain dict (the project's own keys, under
        the reserved prefix, left out)."""
        return {key: e.value for key, e in self._local.live().items() if not is_reserved(key)}

    def keys(self) -> list[str]:
        return [key for key in self._local.live() if not is_reserved(key)]

    def items(self) -> list[tuple[str, JSON]]:
        return list(self.snapshot().items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def state_hash(self) -> tuple[str, int]:
        """(hash of the live state, key count): hashed outside the lock, on a copy."""
        return state_hash(self._local.live())

    # -- counters (gossip/counters.py) and rate limits --------------------------------------

    def incr(self, key: str, amount: int = 1) -> int:
        """Add `amount` (>= 0) to the fleet-wide counter `key`; the new total as this node
        knows it. Concurrent increments on any nodes all count: each node counts in a slot
        of its own. Never waits on the network."""
        return self._local.count_by(key, amount, 0)

    def decr(self, key: str, amount: int = 1) -> int:
        """Take `amount` (>= 0) off the counter `key` (an up-down counter); the new total."""
        return self._local.count_by(key, 0, amount)

    def count(self, key: str) -> int:
        """The fleet-wide total of counter `key` as this node knows it (0 if never counted)."""
        return self._local.count(key)

    def incr_window(self, key: str, period: float, amount: int = 1, quiet_from: int | None = None
                    ) -> WindowCount:
        """Count `amount` in the current window of `period` seconds (windows aligned to wall
        time on every node) of the counter `key`; this and the previous window's totals.
        Old windows expire by themselves. Counts made at or past `quiet_from` (a limit, past
        which they change no decision) spread with the next counts, or within an interval."""
        return self._local.incr_window(key, period, amount, quiet_from)

    def window_count(self, key: str, period: float) -> WindowCount:
        """The current and previous window's totals of the windowed counter `key`."""
        return self._local.window_count(key, period)

    def admit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """One request against the rate limit `rate` on the windowed counter `key`: the
        decision, and the request counted if admitted (atomically on this node). While the
        node refuses writes (its clock is unfit for them, see /health) it still decides and
        counts, on what it holds: a limiter that answered 503 would take the app down."""
        return self._local.admit(key, rate, cost)

    def window_names(self) -> list[str]:
        """The windowed counters with a count in a window not yet over, as this node knows them."""
        return self._local.window_names()

    # -- what the node tells of itself (node.server.views) ----------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Every member as this node sees it, itself included, sorted by id."""
        return self._views.members()

    def cluster_view(self) -> tuple[tuple[str, ...], Counter[str]]:
        """Our seeds, and how many other members we know by status (for /health)."""
        return self._views.cluster_view()

    def member_events(self) -> list[MemberEvent]:
        """Changes in members' standing since the last call (node.monitoring.memberlog
        logs them)."""
        return self._views.member_events()

    def entry_counts(self) -> tuple[int, int]:
        """(live entries, deleted or expired ones) held, the project's own included."""
        return self._views.entry_counts()

    def stats(self) -> dict[str, Any]:
        return self._views.stats()

    @property
    def pushes_sent(self) -> int:
        """Eager pushes ended, delivered or not."""
        return self._pump.pushes_sent

    @property
    def push_seconds(self) -> float:
        """The pushes' total time from sending to the answer (or failure)."""
        return self._pump.push_seconds

    # -- recipes: change streams, service registry, run-once jobs (node/recipes/) -----------

    def watch(self, prefix: str = "", buffer: int = DEFAULT_BUFFER) -> Watch:
        """Every change this node applies to keys starting with `prefix` (its own writes
        and deletes, and its peers' as they merge), once each, in order, as an async
        iterator of Entry; raises WatchDropped once more than `buffer` wait unread (see
        node/recipes/watch.py). Keys under the reserved prefix only if `prefix` starts with it."""
        return self._recipes.changes.watch(prefix, buffer)

    def register(self, service: str, url: str, meta: JSON = None, ttl: float = DEFAULT_TTL) -> Instance:
        """Register this node's instance of `service`, kept alive while the node runs and
        withdrawn when it leaves (see node/recipes/registry.py)."""
        return self._recipes.registry.register(service, url, meta, ttl)

    def unregister(self, service: str) -> None:
        self._recipes.registry.unregister(service)

    def instances(self, service: str) -> list[Instance]:
        """The live instances of `service`, but those of nodes seen dead or left."""
        return self._recipes.registry.instances(service)

    def singleton(self, name: str, every: float) -> Callable[[Job], Job]:
        """Decorator: run an async function every `every` seconds in one node of the
        cluster (see node/recipes/jobs.py for what happens around failures and partitions)."""
        return self._recipes.jobs.singleton(name, every)

    # -- serving peers (node.server.inbox) --------------------------------------------------

    def allows(self, host: str) -> bool:
        """Whether `host` (a peer's IP address) may send us gossip."""
        return self._inbox.allows(host)

    def keyring_lock(self) -> threading.Lock:
        """Hold while changing the key ring (admin routes run in a thread pool)."""
        return self._local.lock

    def sign(self, body: bytes) -> dict[str, str]:
        """Headers that authenticate an outgoing body (none without a key)."""
        return self._signatures.sign(body)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthError unless `body` is signed by a key we accept (no-op without one)."""
        self._signatures.verify(headers, body)

    def receive(self, body: bytes, headers: Mapping[str, str]) -> bytes | None:
        """Handle a peer's message; the encoded reply, if any. Raises PeerError (and
        its AuthError) having applied nothing."""
        return self._inbox.receive(body, headers)

    def receive_probe(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Handle a peer's probe message (R23); False if this node does not probe. Raises
        PeerError having applied nothing."""
        return self._probing.receive(body, headers)

    # -- the background loops (node.server.pump) --------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the node's loops run (its lifespan or run() started it, and it has not stopped)."""
        return self in _running

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Gossip until cancelled. Started by the lifespan in its task group."""
        _running.add(self)
        try:
            probes = [self._probing.run] if self._probing.on else []
            await self._pump.run(task_status, self.health.run, self._recipes.tasks.run, *probes)
        finally:
            _running.discard(self)

    async def leave(self, timeout: float = 1.0) -> None:
        """Withdraw our service instances, then tell every live peer we are leaving
        (they show us as left, not dead)."""
        with anyio.move_on_after(timeout):
            await self._recipes.registry.withdraw()
        await self._pump.leave(timeout)

    async def save(self) -> None:
        """Write the snapshot to --data-dir if the state changed since the last one."""
        await self._pump.save()

    async def aclose(self) -> None:
        await self.transport.aclose()
