"""SharedState: the core protocol, a dict-like face for request handlers, and the
background loops that gossip it over HTTP. Reads never touch the network."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
from anyio.abc import TaskStatus

from gossip.auth import KeyRing, Verifier, sign
from gossip.clock import ZERO
from gossip.codec import Codec
from gossip.counters import Counting, WindowCount, period_ms
from gossip.errors import GossipError, InvalidKey, InvalidValue, NetworkError, PeerError, WritesRefused
from gossip.membership import MemberEvent
from gossip.messages import Outgoing, Reply
from gossip.namespaces import RESERVED, is_reserved
from gossip.protocol import GossipProtocol
from gossip.ratelimit import Decision, Rate, admit
from gossip.store import JSON, Entry, state_hash, writer_id
from node.clockcheck import ClockCheck
from node.dns_seeds import DnsSeeds, replace_derived, split_seeds
from node.health import HealthWatch, PeerLog
from node.jobs import Job
from node.metrics import NodeMetrics
from node.persistence import SnapshotFile
from node.recipes import Recipes
from node.registry import DEFAULT_TTL, Instance
from node.settings import Settings
from node.transport import KINDS, HttpTransport, peer_time, wall_ms
from node.watch import DEFAULT_BUFFER, Watch

log = logging.getLogger("gossip.node")


SAVE_EVERY = 1.0  # seconds between snapshots to --data-dir, when the state changed
# Deferred windowed counts (rate limits) are written at once after a quiet spell, then at most
# this often (s): a stream of hits, from threads above all, wakes the loop that often, not per hit.
COUNTS_EVERY = 0.002


class TooFewPeers(InvalidValue):
    """A write asked for more replicas than there are live peers (nothing was written)."""


class ReplicationTimeout(GossipError):
    """Fewer peers than asked confirmed a write in time (the write itself stands)."""

    def __init__(self, acked: int, wanted: int, timeout: float, peers: int) -> None:
        super().__init__(
            f"only {acked} of {wanted} replicas confirmed the write within {timeout} s "
            f"({peers} live peers); it is stored on this node and spreads by gossip"
        )
        self.acked, self.wanted = acked, wanted


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


def _refuse_reserved(key: str) -> None:
    if isinstance(key, str) and is_reserved(key):
        raise InvalidKey(f"keys starting with {RESERVED!r} are reserved for the project's own data "
                         "(counters, the service registry, jobs)")  # fmt: skip


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
        self._verifier = None
        if self.keyring is not None:
            window_ms = int(self.config.replay_window * 1000)
            self._verifier = Verifier(self.keyring, self.config.cluster_id, window_ms)
        self.transport = HttpTransport(self.codec, client, self, settings.client_tls())
        self._url_seeds = split_seeds(settings.seeds)[0]
        self.dns = dns if dns is not None else settings.dns_seeds()
        self.protocol = GossipProtocol(
            self.config, settings.id, settings.address, rng or random.Random(),
            wall_ms(), (*self._url_seeds, *self.dns.addresses()), tags=dict(settings.tags),
        )  # fmt: skip
        self._snapshots = SnapshotFile(Path(settings.data_dir), self.codec) if settings.data_dir else None
        saved = self._snapshots.load() if self._snapshots is not None else None
        if saved is not None:
            self.protocol.restore(saved, wall_ms())  # serve the old state before talking to anyone
        # Whether our clock is fit to acknowledge writes (node.clockcheck), told the time
        # stamped on every message; it judges our HLC too, which a snapshot may put ahead.
        self.clockcheck = ClockCheck(
            settings.address, self.config.max_offset, lambda: self.protocol.clock.last.wall,
            accept_anyway=settings.accept_writes_when_refused, wall_ms=wall_ms,
        )  # fmt: skip
        self.clockcheck.restored_wall = self.protocol.clock.last.wall if saved is not None else None
        self.clockcheck.expect(self.protocol.membership.seeds)
        self.transport.clock = self.clockcheck
        self._saved_version = self.protocol.store.version
        self._counting = Counting(self.protocol)  # counters' totals, kept up to date by the store
        self.rejected: Counter[str] = Counter()  # refused gossip, by error type
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in settings.allow]
        self._rumor_ready = anyio.Event()
        self._counts_ready = anyio.Event()  # deferred windowed counts wait to be written
        self._pushing: set[str] = set()  # peers with a push in flight
        self._exchanging: set[str] = set()  # peers with a round's exchange in flight
        self.pushes_sent = 0  # eager pushes ended, delivered or not
        self.push_seconds = 0.0  # their total time from sending to the answer (or failure)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0  # the thread running the loop, while the node runs
        self._wake_sent = False  # a wake from another thread is on its way to the loop
        # -- health and metrics: what our exchanges met with (node.health), whether we
        # take writes, and the /metrics registry (its lag histogram follows merges from now on).
        self.peers = PeerLog()
        self.health = HealthWatch(self)
        self.metrics = NodeMetrics(self)
        self._recipes = Recipes(self)  # change streams, service registry, run-once jobs

    @property
    def id(self) -> str:
        return self.protocol.id

    @property
    def write_refusal(self) -> str | None:
        """Why this node takes no writes now (its clock, node.clockcheck), or None."""
        return self.clockcheck.refusal()

    async def writable(self) -> None:
        """Wait while a node just started has yet to compare its clock with another host's
        (its first round is under way): an interval and a request's timeout at most.
        Writes that come through here are then taken, or refused saying why."""
        await self.clockcheck.settled(self.config.gossip_interval + self.config.request_timeout)

    # -- the dict-like API ----------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        """The live entry for `key` (value, timestamp, writer), or None. No lock: one dict
        read is atomic, and entries never change; the clock is read only for an expiry."""
        entry = self.protocol.store.get(key)
        if entry is None or not entry.is_live(0 if entry.expires_at is None else wall_ms()):
            return None
        return entry

    def get(self, key: str, default: JSON = None) -> JSON:
        entry = self.entry(key)
        return default if entry is None else entry.value

    def __getitem__(self, key: str) -> JSON:
        entry = self.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.entry(key) is not None

    def set(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        """Store `value` (any JSON value) under `key`, optionally expiring after `ttl`
        seconds; it spreads to every node in the background. Raises CallerError, or
        WritesRefused while our clock is unfit for writes (node.clockcheck, /health): the
        peers would refuse them, or it has not been compared with theirs yet."""
        _refuse_reserved(key)
        self._check_writes()
        if self._counting.is_counter(key):
            raise InvalidKey(f"{key!r} is a counter: change it with incr() or decr(), not set()")
        return self.write_reserved(key, value, ttl)

    def write_reserved(self, key: str, value: JSON, ttl: float | None = None) -> Entry:
        """set() without the check that keeps users out of the reserved keys: for the
        project's own data (counters, registry, jobs)."""
        with self._lock:
            entry = self.protocol.write(key, value, wall_ms(), ttl)
        self._wake_pusher()
        return entry

    async def aset(
        self, key: str, value: JSON, ttl: float | None = None, replicas: int = 0, timeout: float = 2.0
    ) -> Entry:
        """set(), and with `replicas` > 0 return only once that many peers hold the write
        (sent to them directly, trying further peers if some fail: a peer holds it when its
        digest says so), so it survives the loss of this node. Raises ReplicationTimeout,
        saying how many did, otherwise; the write stays stored here and spreads as usual
        either way."""
        _refuse_reserved(key)
        await self.writable()
        self._check_writes()
        with self._lock:
            peers = self.protocol.membership.live_addresses()
            if replicas > len(peers):
                raise TooFewPeers(f"replicas={replicas} cannot be met: {len(peers)} live peers")
            entry = self.protocol.write(key, value, wall_ms(), ttl)
            self.protocol.rng.shuffle(peers)
        self._wake_pusher()
        acked = 0

        async def replicate(scope: anyio.CancelScope) -> None:
            nonlocal acked
            while peers and acked < replicas:
                if await self._replicate(peers.pop(0), entry):
                    acked += 1
            if acked >= replicas:
                scope.cancel()

        with anyio.move_on_after(timeout) as scope:
            async with anyio.create_task_group() as tg:
                for _ in range(replicas):
                    tg.start_soon(replicate, scope)
        if acked < replicas:
            raise ReplicationTimeout(acked, replicas, timeout, len(peers))
        return entry

    async def _replicate(self, address: str, entry: Entry, tries: int = 3) -> bool:
        """Send our writes `address` lacks, until its digest shows it holds `entry`."""
        for _ in range(tries):
            with self._lock:
                out = self.protocol.replication(address)
            answer = await self._send(out)
            if answer is None:
                return False
            if answer.digest.get(entry.origin, ZERO) >= entry.ts:
                return True
        return False

    def __setitem__(self, key: str, value: JSON) -> None:
        self.set(key, value)

    def delete(self, key: str) -> Entry:
        """Delete `key` everywhere (a tombstone that wins over every older write)."""
        _refuse_reserved(key)
        self._check_writes()
        return self.delete_reserved(key)

    def delete_reserved(self, key: str) -> Entry:
        """delete() of one of the project's own keys."""
        with self._lock:
            entry = self.protocol.delete(key, wall_ms())
        self._wake_pusher()
        return entry

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def _check_writes(self) -> None:
        if self.write_refusal is not None:
            raise WritesRefused(self.write_refusal)

    # -- counters (gossip/counters.py) -----------------------------------------------------

    def incr(self, key: str, amount: int = 1) -> int:
        """Add `amount` (>= 0) to the fleet-wide counter `key`; the new total as this node
        knows it. Concurrent increments on any nodes all count: each node counts in a slot
        of its own. Never waits on the network."""
        return self._count(key, amount, 0)

    def decr(self, key: str, amount: int = 1) -> int:
        """Take `amount` (>= 0) off the counter `key` (an up-down counter); the new total."""
        return self._count(key, 0, amount)

    def count(self, key: str) -> int:
        """The fleet-wide total of counter `key` as this node knows it (0 if never counted)."""
        with self._lock:
            return self._counting.total(key)

    def incr_window(self, key: str, period: float, amount: int = 1) -> WindowCount:
        """Count `amount` in the current window of `period` seconds (windows aligned to wall
        time on every node) of the counter `key`; this and the previous window's totals.
        Old windows expire by themselves."""
        length = period_ms(period)
        self._check_writes()
        defer = self in _running  # (the pusher writes the slots, see Counting; woken once for them all)
        with self._lock:
            clean = not self._counting.unwritten
            counted = self._counting.add_in_window(key, length, amount, wall_ms(), defer)
        if not defer:
            self._wake_pusher()
        elif clean:
            self._wake_flusher()
        return counted

    def window_count(self, key: str, period: float) -> WindowCount:
        """The current and previous window's totals of the windowed counter `key`."""
        length = period_ms(period)
        with self._lock:
            return self._counting.window(key, length, wall_ms())

    def admit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """One request against the rate limit `rate` on the windowed counter `key`: the
        decision, and the request counted if admitted (atomically on this node). While the
        node refuses writes (its clock is unfit for them, see /health) it still decides and
        counts, on what it holds: a limiter that answered 503 would take the app down."""
        defer = self in _running
        with self._lock:
            clean = not self._counting.unwritten
            decision = admit(self._counting, key, rate, cost, wall_ms(), defer)
        if decision.allowed and not defer:
            self._wake_pusher()
        elif decision.allowed and clean:
            self._wake_flusher()
        return decision

    def window_names(self) -> list[str]:
        """The windowed counters with a count in a window not yet over, as this node knows them."""
        with self._lock:
            return sorted(self._counting.names(wall_ms()))

    def _count(self, key: str, added: int, removed: int) -> int:
        self._check_writes()
        with self._lock:
            total = self._counting.add(key, added, removed, wall_ms())
        self._wake_pusher()
        return total

    def snapshot(self) -> dict[str, JSON]:
        """Every live key and its value, as a plain dict (the project's own keys, under
        the reserved prefix, left out)."""
        return {key: e.value for key, e in self._live().items() if not is_reserved(key)}

    def _live(self) -> dict[str, Entry]:
        with self._lock:
            return self.protocol.live(wall_ms())

    def keys(self) -> list[str]:
        return [key for key in self._live() if not is_reserved(key)]

    def items(self) -> list[tuple[str, JSON]]:
        return list(self.snapshot().items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def state_hash(self) -> tuple[str, int]:
        """(hash of the live state, key count): hashed outside the lock, on a copy."""
        return state_hash(self._live())

    def members(self) -> list[dict[str, Any]]:
        """Every member as this node sees it, itself included, sorted by id."""
        now = wall_ms()
        with self._lock:
            me = self.protocol.membership.me
            out = [{"id": me.id, "address": me.address, "status": "left" if me.left else "alive",
                    "self": True, "generation": me.generation, "heartbeat": me.heartbeat,
                    "phi": 0.0, "last_heard_ms_ago": 0, "tags": dict(me.tags)}]  # fmt: skip
            for m in self.protocol.membership.members.values():
                out.append({
                    "id": m.info.id, "address": m.info.address, "status": m.status, "self": False,
                    "generation": m.info.generation, "heartbeat": m.info.heartbeat,
                    "phi": round(m.detector.phi(now), 2), "last_heard_ms_ago": max(0, now - m.last_heard),
                    "tags": dict(m.info.tags),
                })  # fmt: skip
        return sorted(out, key=lambda m: str(m["id"]))

    def cluster_view(self) -> tuple[tuple[str, ...], Counter[str]]:
        """Our seeds, and how many other members we know by status (for /health)."""
        with self._lock:
            membership = self.protocol.membership
            return membership.seeds, Counter(m.status for m in membership.members.values())

    def member_events(self) -> list[MemberEvent]:
        """Changes in members' standing since the last call (node.memberlog logs them)."""
        with self._lock:
            events = self.protocol.membership.events
            drained = list(events)
            events.clear()
        return drained

    def entry_counts(self) -> tuple[int, int]:
        """(live entries, deleted or expired ones) held, the project's own included (for
        /metrics: counted on a copy, outside the lock)."""
        with self._lock:
            entries = list(self.protocol.store.entries())
        now = wall_ms()
        live = sum(1 for e in entries if e.is_live(now))
        return live, len(entries) - live

    def stats(self) -> dict[str, Any]:
        c, source = self.protocol.counters, self.protocol.caught_up_from
        return {
            "node": self.id,
            "rounds": c.rounds,
            "exchanges_served": c.exchanges_served,
            "rumors_received": c.rumors_received,
            "pushes_sent": self.pushes_sent,
            "push_seconds": round(self.push_seconds, 6),
            "entries_applied": c.entries_applied,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "failures": c.failures,
            "failures_by_peer": dict(c.by_peer_failures),
            "collected": c.collected,
            "retired_writers": c.retired,
            "resets": c.resets,
            "refused_superseded": c.refused_superseded,
            "refused_stale": c.refused_stale,
            "dropped_unvouched": c.dropped_unvouched,
            "behind_peers": c.behind_peers,
            "undecided": c.undecided,
            "catching_up": self.protocol.bootstrapping,
            "caught_up_from": None if source is None else writer_id(*source),
            "bytes_sent": self.transport.bytes_sent,
            "bytes_received": self.transport.bytes_received,
        }

    # -- recipes: change streams, service registry, run-once jobs (node/recipes.py) --------

    def watch(self, prefix: str = "", buffer: int = DEFAULT_BUFFER) -> Watch:
        """Every change this node applies to keys starting with `prefix` (its own writes
        and deletes, and its peers' as they merge), once each, in order, as an async
        iterator of Entry; raises WatchDropped once more than `buffer` wait unread (see
        node/watch.py). Keys under the reserved prefix only if `prefix` starts with it."""
        return self._recipes.changes.watch(prefix, buffer)

    def register(self, service: str, url: str, meta: JSON = None, ttl: float = DEFAULT_TTL) -> Instance:
        """Register this node's instance of `service`, kept alive while the node runs and
        withdrawn when it leaves (see node/registry.py)."""
        return self._recipes.registry.register(service, url, meta, ttl)

    def unregister(self, service: str) -> None:
        self._recipes.registry.unregister(service)

    def instances(self, service: str) -> list[Instance]:
        """The live instances of `service`, but those of nodes seen dead or left."""
        return self._recipes.registry.instances(service)

    def singleton(self, name: str, every: float) -> Callable[[Job], Job]:
        """Decorator: run an async function every `every` seconds in one node of the
        cluster (see node/jobs.py for what happens around failures and partitions)."""
        return self._recipes.jobs.singleton(name, every)

    # -- serving peers ----------------------------------------------------------------------

    def allows(self, host: str) -> bool:
        """Whether `host` (a peer's IP address) may send us gossip."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self._allowed)

    def keyring_lock(self) -> threading.Lock:
        """Hold while changing the key ring (admin routes run in a thread pool)."""
        return self._lock

    def sign(self, body: bytes) -> dict[str, str]:
        """Headers that authenticate an outgoing body (none without a key)."""
        if self.keyring is None:
            return {}
        with self._lock:
            return sign(self.keyring, self.config.cluster_id, body, wall_ms(), secrets.token_hex(16))

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthError unless `body` is signed by a key we accept (no-op without one)."""
        if self._verifier is not None:
            with self._lock:
                self._verifier.verify(headers, body, wall_ms())

    def receive(self, body: bytes, headers: Mapping[str, str]) -> bytes | None:
        """Handle a peer's message; the encoded reply, if any. Raises PeerError (and
        its AuthError) having applied nothing."""
        received = time.monotonic()
        try:
            self.verify(headers, body)
            message = self.codec.decode(body)
            self.clockcheck.observe(message.sender.address, peer_time(headers), received)
            with self._lock:
                resets = self.protocol.counters.resets
                reply = self.protocol.handle(message, wall_ms())
                relay = self.protocol.has_rumors()
                self._log_reset(resets)
        except PeerError as exc:
            self.rejected[type(exc).__name__] += 1
            log.warning("%s: rejected gossip: %s", self.id, exc)
            raise
        self.peers.heard()
        self.transport.count(KINDS[type(message)], "received", len(body))
        if relay:
            self._wake_pusher()  # pass pushed writes on to our part of the tree
        if reply is None:
            return None
        encoded = self.codec.encode(reply)
        self.transport.count("reply", "sent", len(encoded))
        return encoded

    def _log_reset(self, resets_before: int) -> None:
        notice = self.protocol.last_reset
        if self.protocol.counters.resets != resets_before and notice is not None:
            e = notice.evidence
            log.warning(
                "%s: reset: our state predates collections of %s (%s: %s at %s); dropped it and "
                "catching up from that peer as a new life; writes only this node held are lost",
                self.id, notice.peer, e.reason, e.writer, tuple(e.mark),
            )

    def _wake_pusher(self) -> None:
        """Start an eager push now, from the event loop or from any thread. From a thread,
        one wake at a time: the writes made before the loop takes it ride with it (a wake
        per write cost a system call and a switch to the loop's thread each)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._rumor_ready.set()  # (not running yet: the first push takes it)
        elif not self._wake_sent:
            self._wake_sent = True
            loop.call_soon_threadsafe(self._woken)

    def _wake_flusher(self) -> None:
        """Have the deferred counts written (called when the first is taken since the last
        write: a wake per batch)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._counts_ready.set()
        else:
            loop.call_soon_threadsafe(lambda: self._counts_ready.set())

    def _woken(self) -> None:
        self._wake_sent = False
        self._rumor_ready.set()

    @property
    def running(self) -> bool:
        """Whether the node's loops run (its lifespan or run() started it, and it has not stopped)."""
        return self in _running

    # -- the background loops ---------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Gossip until cancelled. Started by the lifespan in its task group."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._wake_sent = False  # (a wake sent to the loop of an earlier run never came)
        _running.add(self)
        try:
            await self._run_loops(task_status)
        finally:
            _running.discard(self)
            with self._lock:
                self._counting.flush(wall_ms())

    async def _run_loops(self, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._rounds, tg)
            tg.start_soon(self._eager_push, tg)
            tg.start_soon(self._flush_counts)
            tg.start_soon(self.health.run)
            tg.start_soon(self._recipes.tasks.run)
            if self.dns.seeds:
                tg.start_soon(self._follow_dns)
            if self._snapshots is not None:
                tg.start_soon(self._save_now_and_then)
            task_status.started()

    async def leave(self, timeout: float = 1.0) -> None:
        """Withdraw our service instances, then tell every live peer we are leaving
        (they show us as left, not dead)."""
        with anyio.move_on_after(timeout):
            await self._recipes.registry.withdraw()
        with self._lock:
            outgoing = self.protocol.leave()
        with anyio.move_on_after(timeout):
            await self._send_all(outgoing)

    async def save(self) -> None:
        """Write the snapshot to --data-dir if the state changed since the last one."""
        if self._snapshots is None:
            return
        with self._lock:
            version = self.protocol.store.version
            if version == self._saved_version:
                return
            snapshot = self.protocol.snapshot()
        await anyio.to_thread.run_sync(self._snapshots.save, snapshot)
        self._saved_version = version

    async def _save_now_and_then(self) -> None:
        while True:
            await anyio.sleep(SAVE_EVERY)
            await self.save()

    async def _rounds(self, tg: anyio.abc.TaskGroup) -> None:
        """A round every interval, whatever its exchanges take: a peer whose packets are
        dropped holds its exchange for request_timeout (longer than the interval), and it
        must not hold the rounds with the others. One exchange in flight per peer."""
        first = self.protocol.first_delay()
        if self.clockcheck.expecting and not self.clockcheck.compared:
            first /= 10  # soon: writes wait until we have compared our clock with another host's
        await anyio.sleep(first)
        while True:
            with self._lock:
                self._counting.flush(wall_ms())
                outgoing = self.protocol.round(wall_ms())
            for out in outgoing:
                if out.address not in self._exchanging:
                    self._exchanging.add(out.address)
                    tg.start_soon(self._exchange, out)
            await anyio.sleep(self.protocol.next_delay())

    async def _exchange(self, out: Outgoing) -> None:
        try:
            await self._send(out)
        finally:
            self._exchanging.discard(out.address)

    async def _follow_dns(self) -> None:
        """Look the DNS seeds up again every round while we know no member, every
        dns_refresh seconds after; each answer replaces the seeds the last one gave."""
        while True:
            with self._lock:
                alone = not self.protocol.membership.members
            await anyio.sleep(self.config.gossip_interval if alone else self.settings.dns_refresh)
            before = self.dns.addresses()
            try:
                await self.dns.resolve()
            except Exception:  # a bug here must not stop the node
                log.exception("%s: DNS seed lookup failed", self.id)
            after = self.dns.addresses()
            if after != before:
                with self._lock:
                    membership = self.protocol.membership
                    membership.seeds = replace_derived(membership.seeds, before, after, keep=self._url_seeds)

    async def _eager_push(self, tg: anyio.abc.TaskGroup) -> None:
        """One push in flight per peer; what waits for a peer leaves when its push ends."""
        while True:
            await self._rumor_ready.wait()
            self._rumor_ready = anyio.Event()
            with self._lock:
                self._counting.flush(wall_ms())  # the windowed counts taken since the last push
                outgoing = self.protocol.take_rumors(busy=self._pushing)
            for out in outgoing:
                self._pushing.add(out.address)
                tg.start_soon(self._push, out)

    async def _flush_counts(self) -> None:
        """Write the deferred windowed counts into their slots and push them: at once after
        a quiet spell, else COUNTS_EVERY after the last write (the hits meanwhile ride along)."""
        last = -COUNTS_EVERY
        while True:
            await self._counts_ready.wait()
            self._counts_ready = anyio.Event()
            await anyio.sleep(max(0.0, last + COUNTS_EVERY - anyio.current_time()))
            with self._lock:
                self._counting.flush(wall_ms())
            last = anyio.current_time()
            self._wake_pusher()

    async def _push(self, out: Outgoing) -> None:
        started = anyio.current_time()
        try:
            await self._send(out)
        finally:
            self.pushes_sent += 1
            self.push_seconds += anyio.current_time() - started
            self._pushing.discard(out.address)
            if self.protocol.has_rumors():
                self._rumor_ready.set()

    async def _send_all(self, outgoing: list[Outgoing]) -> None:
        async with anyio.create_task_group() as tg:
            for out in outgoing:
                tg.start_soon(self._send, out)

    async def _send(self, out: Outgoing) -> Reply | None:
        """Deliver one message and take in the answer; the peer's reply, if it sent one."""
        try:
            answer = await self.transport.send(out.address, out.message)
            if isinstance(answer, Reply):
                with self._lock:
                    resets = self.protocol.counters.resets
                    self.protocol.on_reply(out.address, answer, wall_ms())
                    self._log_reset(resets)
            self.peers.took(out.address)
            return answer if isinstance(answer, Reply) else None
        except (NetworkError, PeerError) as exc:
            log.info("%s: exchange with %s failed: %s", self.id, out.address, exc)
            self.peers.failure(out.address, exc)
            with self._lock:
                self.protocol.on_failure(out.address)
                self.protocol.reroute(out)  # (sent on by the pusher, once this one is done)
        except Exception as exc:  # a bug must not stop the loop: one bad exchange never stalls a round
            log.exception("%s: unexpected error in an exchange with %s", self.id, out.address)
            self.peers.failure(out.address, exc)
            with self._lock:
                self.protocol.on_failure(out.address)
        return None

    async def aclose(self) -> None:
        await self.transport.aclose()
