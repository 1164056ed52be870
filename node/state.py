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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
from anyio.abc import TaskStatus

from gossip.auth import KeyRing, Verifier, sign
from gossip.clock import ZERO
from gossip.codec import Codec
from gossip.errors import GossipError, InvalidKey, InvalidValue, NetworkError, PeerError
from gossip.messages import Outgoing, Reply
from gossip.namespaces import RESERVED, is_reserved
from gossip.protocol import GossipProtocol
from gossip.store import JSON, Entry, state_hash
from node.persistence import SnapshotFile
from node.settings import Settings
from node.transport import HttpTransport

log = logging.getLogger("gossip.node")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


SAVE_EVERY = 1.0  # seconds between snapshots to --data-dir, when the state changed


class ReplicationTimeout(GossipError):
    """Fewer peers than asked confirmed a write in time (the write itself stands)."""

    def __init__(self, acked: int, wanted: int, timeout: float, peers: int) -> None:
        super().__init__(
            f"only {acked} of {wanted} replicas confirmed the write within {timeout} s "
            f"({peers} live peers); it is stored on this node and spreads by gossip"
        )
        self.acked, self.wanted = acked, wanted


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
    ) -> None:
        self.settings = settings
        self.config = settings.config
        self.codec = Codec(self.config)
        self.keyring: KeyRing | None = settings.keyring()
        self._verifier = None
        if self.keyring is not None:
            window_ms = int(self.config.replay_window * 1000)
            self._verifier = Verifier(self.keyring, self.config.cluster_id, window_ms)
        self.transport = HttpTransport(self.codec, client, self, settings.client_tls())
        self.protocol = GossipProtocol(
            self.config, settings.id, settings.address, rng or random.Random(),
            wall_ms(), settings.seeds,
        )  # fmt: skip
        self._snapshots = SnapshotFile(Path(settings.data_dir), self.codec) if settings.data_dir else None
        if self._snapshots is not None and (saved := self._snapshots.load()) is not None:
            self.protocol.restore(saved, wall_ms())  # serve the old state before talking to anyone
        self._saved_version = self.protocol.store.version
        self.rejected: Counter[str] = Counter()  # refused gossip, by error type
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in settings.allow]
        self._rumor_ready = anyio.Event()
        self._pushing: set[str] = set()  # peers with a push in flight
        self.pushes_sent = 0  # eager pushes ended, delivered or not
        self.push_seconds = 0.0  # their total time from sending to the answer (or failure)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def id(self) -> str:
        return self.protocol.id

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
        seconds; it spreads to every node in the background. Raises CallerError."""
        _refuse_reserved(key)
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
        with self._lock:
            peers = self.protocol.membership.live_addresses()
            if replicas > len(peers):
                raise InvalidValue(f"replicas={replicas} cannot be met: {len(peers)} live peers")
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
        return self.delete_reserved(key)

    def delete_reserved(self, key: str) -> Entry:
        """delete() of one of the project's own keys."""
        with self._lock:
            entry = self.protocol.delete(key, wall_ms())
        self._wake_pusher()
        return entry

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def snapshot(self) -> dict[str, JSON]:
        """Every live key and its value, as a plain dict (the project's own keys, under
        the reserved prefix, left out)."""
        return {key: e.value for key, e in self._live().items() if not is_reserved(key)}

    def _live(self) -> dict[str, Entry]:
        with self._lock:
            return self.protocol.live(wall_ms())

    def _user_keys(self) -> list[str]:
        return [key for key in self._live() if not is_reserved(key)]

    def keys(self) -> list[str]:
        return self._user_keys()

    def items(self) -> list[tuple[str, JSON]]:
        return list(self.snapshot().items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._user_keys())

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
                    "phi": 0.0, "last_heard_ms_ago": 0}]  # fmt: skip
            for m in self.protocol.membership.members.values():
                out.append({
                    "id": m.info.id, "address": m.info.address, "status": m.status, "self": False,
                    "generation": m.info.generation, "heartbeat": m.info.heartbeat,
                    "phi": round(m.detector.phi(now), 2), "last_heard_ms_ago": max(0, now - m.last_heard),
                })  # fmt: skip
        return sorted(out, key=lambda m: str(m["id"]))

    def stats(self) -> dict[str, Any]:
        c = self.protocol.counters
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
            "catching_up": self.protocol.bootstrapping,
            "bytes_sent": self.transport.bytes_sent,
            "bytes_received": self.transport.bytes_received,
        }

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
        try:
            self.verify(headers, body)
            message = self.codec.decode(body)
            with self._lock:
                resets = self.protocol.counters.resets
                reply = self.protocol.handle(message, wall_ms())
                relay = self.protocol.has_rumors()
                self._log_reset(resets)
        except PeerError as exc:
            self.rejected[type(exc).__name__] += 1
            log.warning("%s: rejected gossip: %s", self.id, exc)
            raise
        if relay:
            self._wake_pusher()  # pass pushed writes on to our part of the tree
        return None if reply is None else self.codec.encode(reply)

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
        """Start an eager push now, from the event loop or from any thread."""
        loop = self._loop
        if loop is None:
            self._rumor_ready.set()  # not running yet: the first push takes it
        elif loop is _running_loop():
            self._rumor_ready.set()
        else:
            loop.call_soon_threadsafe(lambda: self._rumor_ready.set())

    # -- the background loops ---------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Gossip until cancelled. Started by the lifespan in its task group."""
        self._loop = asyncio.get_running_loop()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._rounds)
            tg.start_soon(self._eager_push, tg)
            if self._snapshots is not None:
                tg.start_soon(self._save_now_and_then)
            task_status.started()

    async def leave(self, timeout: float = 1.0) -> None:
        """Tell every live peer we are leaving (they show us as left, not dead)."""
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

    async def _rounds(self) -> None:
        await anyio.sleep(self.protocol.first_delay())
        while True:
            started = anyio.current_time()
            with self._lock:
                outgoing = self.protocol.round(wall_ms())
            await self._send_all(outgoing)
            elapsed = anyio.current_time() - started
            await anyio.sleep(max(0.0, self.protocol.next_delay() - elapsed))

    async def _eager_push(self, tg: anyio.abc.TaskGroup) -> None:
        """One push in flight per peer; what waits for a peer leaves when its push ends."""
        while True:
            await self._rumor_ready.wait()
            self._rumor_ready = anyio.Event()
            with self._lock:
                outgoing = self.protocol.take_rumors(busy=self._pushing)
            for out in outgoing:
                self._pushing.add(out.address)
                tg.start_soon(self._push, out)

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
                return answer
        except (NetworkError, PeerError) as exc:
            log.info("%s: exchange with %s failed: %s", self.id, out.address, exc)
            with self._lock:
                self.protocol.on_failure(out.address)
                self.protocol.reroute(out)  # (sent on by the pusher, once this one is done)
        except Exception:  # a bug must not stop the loop: one bad exchange never stalls a round
            log.exception("%s: unexpected error in an exchange with %s", self.id, out.address)
            with self._lock:
                self.protocol.on_failure(out.address)
        return None

    async def aclose(self) -> None:
        await self.transport.aclose()
