"""What moves a node's state to its peers and to disk: the background loops (a round every
interval, eager pushes of new writes, the deferred windowed counts, the DNS seeds kept
current, snapshots to --data-dir), sending one message and taking in its answer,
acknowledged replication, and the goodbye of a clean leave.

Every touch of the protocol holds the local state's lock (node.server.local_state), never
across an await: each loop takes what to send under the lock, then sends it without."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from gossip.clock import ZERO
from gossip.config import Config
from gossip.errors import GossipError, NetworkError, PeerError
from gossip.messages import Outgoing, Reply
from gossip.store import Entry
from node.server.clockcheck import ClockCheck
from node.server.dns_seeds import DnsSeeds, replace_derived
from node.server.local_state import LocalState
from node.server.peerlog import PeerLog
from node.server.persistence import SnapshotFile
from node.wire.transport import Transport, wall_ms

log = logging.getLogger("gossip.node")

SAVE_EVERY = 1.0  # seconds between snapshots to --data-dir, when the state changed
# Deferred windowed counts (rate limits) are written at once after a quiet spell, then at most
# this often (s): a stream of hits, from threads above all, wakes the loop that often, not per hit.
COUNTS_EVERY = 0.002
LEAVE_POLL = 0.005  # seconds between looks, before a goodbye, at whether our pushes have ended

Task = Callable[[], Coroutine[Any, Any, None]]


class ReplicationTimeout(GossipError):
    """Fewer peers than asked confirmed a write in time (the write itself stands)."""

    def __init__(self, acked: int, wanted: int, timeout: float, peers: int) -> None:
        super().__init__(
            f"only {acked} of {wanted} replicas confirmed the write within {timeout} s "
            f"({peers} live peers); it is stored on this node and spreads by gossip"
        )
        self.acked, self.wanted = acked, wanted


class Pump:
    def __init__(
        self,
        local: LocalState,
        transport: Transport,
        peers: PeerLog,
        config: Config,
        dns: DnsSeeds,
        dns_refresh: float,
        url_seeds: tuple[str, ...],
        snapshots: SnapshotFile | None,
    ) -> None:
        """`peers`: where the outcome of each exchange is noted (node.server.peerlog); `url_seeds`:
        the seeds given as URLs, kept when the DNS seeds change."""
        self.local, self.protocol = local, local.protocol
        self.transport, self.peers, self.config = transport, peers, config
        self.dns, self.dns_refresh, self.url_seeds = dns, dns_refresh, url_seeds
        self.snapshots = snapshots
        self._saved_version = self.protocol.store.version
        self._exchanging: set[str] = set()  # peers with a round's exchange in flight
        self.pushes_sent = 0  # eager pushes ended, delivered or not
        self.push_seconds = 0.0  # their total time from sending to the answer (or failure)

    @property
    def clockcheck(self) -> ClockCheck:
        return self.local.clockcheck

    async def run(self, task_status: TaskStatus[None], *also: Task) -> None:
        """Run the loops, and the tasks `also`, until cancelled; the deferred counts are
        written when they stop."""
        local = self.local
        local.wake.bind()
        local.deferring = True
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._rounds, tg)
                tg.start_soon(self._eager_push, tg)
                tg.start_soon(self._flush_counts)
                for task in also:
                    tg.start_soon(task)
                if self.dns.seeds:
                    tg.start_soon(self._follow_dns)
                if self.snapshots is not None:
                    tg.start_soon(self._save_now_and_then)
                task_status.started()
        finally:
            local.deferring = False
            local.flush_counts()

    # -- replication and leaving ------------------------------------------------------------

    async def replicate(self, entry: Entry, peers: list[str], replicas: int, timeout: float) -> None:
        """Return once `replicas` of `peers` hold `entry` (sent to them directly, trying
        further peers if some fail: a peer holds it when its digest says so); raise
        ReplicationTimeout, saying how many did, otherwise."""
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

    async def _replicate(self, address: str, entry: Entry, tries: int = 3) -> bool:
        """Send our writes `address` lacks, until its digest shows it holds `entry`."""
        for _ in range(tries):
            with self.local.lock:
                out = self.protocol.replication(address)
            answer = await self.send(out)
            if answer is None:
                return False
            if answer.digest.get(entry.origin, ZERO) >= entry.ts:
                return True
        return False

    async def spread_now(self) -> None:
        """Send every live peer the writes it lacks, directly (not waiting for the rounds)."""
        with self.local.lock:
            outgoing = [self.protocol.replication(a) for a in self.protocol.membership.live_addresses()]
        await self._send_all(outgoing)

    async def leave(self, timeout: float) -> None:
        """Tell every live peer we are leaving (they show us as left, not dead), once the
        pushes under way have ended (half the timeout at most): a peer that took our goodbye
        before our last writes could take us for gone before it knows what we last did (the
        record of a job's tick we ran, say: it would run it again)."""
        with anyio.move_on_after(timeout / 2):
            while not self.protocol.outbox.idle():
                await anyio.sleep(LEAVE_POLL)
        with self.local.lock:
            outgoing = self.protocol.leave()
        with anyio.move_on_after(timeout):
            await self._send_all(outgoing)

    async def save(self) -> None:
        """Write the snapshot to --data-dir if the state changed since the last one."""
        if self.snapshots is None:
            return
        with self.local.lock:
            version = self.protocol.store.version
            if version == self._saved_version:
                return
            snapshot = self.protocol.snapshot()
        await anyio.to_thread.run_sync(self.snapshots.save, snapshot)
        self._saved_version = version

    # -- the background loops ---------------------------------------------------------------

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
            with self.local.lock:
                self.local.counting.flush(wall_ms())
                outgoing = self.protocol.round(wall_ms())
            for out in outgoing:
                if out.address not in self._exchanging:
                    self._exchanging.add(out.address)
                    tg.start_soon(self._exchange, out)
            await anyio.sleep(self.protocol.next_delay())

    async def _exchange(self, out: Outgoing) -> None:
        try:
            await self.send(out)
        finally:
            self._exchanging.discard(out.address)

    async def _follow_dns(self) -> None:
        """Look the DNS seeds up again every round while we know no member, every
        dns_refresh seconds after; each answer replaces the seeds the last one gave."""
        while True:
            with self.local.lock:
                alone = not self.protocol.membership.members
            await anyio.sleep(self.config.gossip_interval if alone else self.dns_refresh)
            before = self.dns.addresses()
            try:
                await self.dns.resolve()
            except Exception:  # a bug here must not stop the node
                log.exception("%s: DNS seed lookup failed", self.local.id)
            after = self.dns.addresses()
            if after != before:
                with self.local.lock:
                    membership = self.protocol.membership
                    membership.seeds = replace_derived(membership.seeds, before, after, keep=self.url_seeds)

    async def _eager_push(self, tg: anyio.abc.TaskGroup) -> None:
        """Send the pushes the core gives (one in flight per peer, R21), each in a task of
        its own; woken again when a push ends with more waiting."""
        while True:
            await self.local.wake.wait_rumors()
            with self.local.lock:
                self.local.counting.flush(wall_ms())  # the windowed counts taken since the last push
                outgoing = self.protocol.take_rumors()
            for out in outgoing:
                tg.start_soon(self._push, out)

    async def _flush_counts(self) -> None:
        """Write the deferred windowed counts into their slots and push them: at once after
        a quiet spell, else COUNTS_EVERY after the last write (the hits meanwhile ride along)."""
        last = -COUNTS_EVERY
        while True:
            await self.local.wake.wait_counts()
            await anyio.sleep(max(0.0, last + COUNTS_EVERY - anyio.current_time()))
            self.local.flush_counts()
            last = anyio.current_time()
            self.local.wake.pusher()

    async def _push(self, out: Outgoing) -> None:
        """One push; its end goes to the core, which frees its peer and, if it failed,
        counts that against the peer and reroutes it. One cancelled (the node stops) is
        told as delivered: its peer is freed, and blamed for nothing."""
        started = anyio.current_time()
        delivered = True
        try:
            delivered, _ = await self._deliver(out)
        finally:
            self.pushes_sent += 1
            self.push_seconds += anyio.current_time() - started
            with self.local.lock:
                self.protocol.push_ended(out, delivered)
                more = self.protocol.has_rumors()
            if more:
                self.local.wake.rumor_ready.set()

    async def _send_all(self, outgoing: list[Outgoing]) -> None:
        async with anyio.create_task_group() as tg:
            for out in outgoing:
                tg.start_soon(self.send, out)

    async def send(self, out: Outgoing) -> Reply | None:
        """Deliver one message (not a push: see _push) and take in the answer; the peer's
        reply, if it sent one. A failure counts against the peer."""
        delivered, answer = await self._deliver(out)
        if not delivered:
            with self.local.lock:
                self.protocol.on_failure(out.address)
        return answer

    async def _deliver(self, out: Outgoing) -> tuple[bool, Reply | None]:
        """Send one message and take in a reply; whether it was delivered, and the reply
        if the peer sent one. A failure is logged and noted in the peer log."""
        try:
            answer = await self.transport.send(out.address, out.message)
            if isinstance(answer, Reply):
                with self.local.lock:
                    resets = self.protocol.stats.resets
                    self.protocol.on_reply(out.address, answer, wall_ms())
                    self.local.log_reset(resets)
            self.peers.took(out.address)
            return True, answer if isinstance(answer, Reply) else None
        except (NetworkError, PeerError) as exc:
            log.info("%s: exchange with %s failed: %s", self.local.id, out.address, exc)
            self.peers.failure(out.address, exc)
        except Exception as exc:  # a bug must not stop the loop: one bad exchange never stalls a round
            log.exception("%s: unexpected error in an exchange with %s", self.local.id, out.address)
            self.peers.failure(out.address, exc)
        return False, None
