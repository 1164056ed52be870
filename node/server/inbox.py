"""What a node takes from its peers: whose gossip it accepts (by network and by signature),
and each message handled by the core (POST /gossip, through node.web.api). Also the
signatures on what it sends (node.wire.transport asks for them)."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping

from gossip.auth import KeyRing, Verifier, sign
from gossip.codec import Codec
from gossip.config import Config
from gossip.errors import PeerError
from node.server.clockcheck import ClockCheck
from node.server.local_state import LocalState
from node.server.peerlog import PeerLog
from node.wire.traffic import Traffic
from node.wire.transport import KINDS, peer_time, wall_ms

log = logging.getLogger("gossip.node")


class Signatures:
    """Signs what we send and verifies what we receive with the cluster's key ring (no-ops
    without one). `lock` guards the ring (admin routes change it) and the verifier's
    memory of nonces: the local state's one lock."""

    def __init__(self, keyring: KeyRing | None, config: Config, lock: threading.Lock) -> None:
        self.keyring, self.config, self.lock = keyring, config, lock
        self._verifier = None
        if keyring is not None:
            window_ms = int(config.replay_window * 1000)
            self._verifier = Verifier(keyring, config.cluster_id, window_ms)

    def sign(self, body: bytes) -> dict[str, str]:
        """Headers that authenticate an outgoing body (none without a key)."""
        if self.keyring is None:
            return {}
        with self.lock:
            return sign(self.keyring, self.config.cluster_id, body, wall_ms(), secrets.token_hex(16))

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthError unless `body` is signed by a key we accept (no-op without one)."""
        if self._verifier is not None:
            with self.lock:
                self._verifier.verify(headers, body, wall_ms())


class Inbox:
    def __init__(
        self,
        local: LocalState,
        signatures: Signatures,
        codec: Codec,
        traffic: Traffic,
        peers: PeerLog,
        allow: Iterable[str],
    ) -> None:
        """`peers`: where hearing from a peer is noted (node.server.peerlog); `allow`: the networks
        whose gossip we take."""
        self.local, self.signatures, self.codec = local, signatures, codec
        self.traffic, self.peers = traffic, peers
        self.rejected: Counter[str] = Counter()  # refused gossip, by error type
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in allow]

    @property
    def clockcheck(self) -> ClockCheck:
        return self.local.clockcheck

    def allows(self, host: str) -> bool:
        """Whether `host` (a peer's IP address) may send us gossip."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self._allowed)

    def receive(self, body: bytes, headers: Mapping[str, str]) -> bytes | None:
        """Handle a peer's message; the encoded reply, if any. Raises PeerError (and
        its AuthError) having applied nothing."""
        received = time.monotonic()
        local, protocol = self.local, self.local.protocol
        try:
            self.signatures.verify(headers, body)
            message = self.codec.decode(body)
            self.clockcheck.observe(message.sender.address, peer_time(headers), received)
            with local.lock:
                resets = protocol.stats.resets
                reply = protocol.handle(message, wall_ms())
                relay = protocol.has_rumors()
                local.log_reset(resets)
        except PeerError as exc:
            self.rejected[type(exc).__name__] += 1
            log.warning("%s: rejected gossip: %s", local.id, exc)
            raise
        self.peers.heard()
        self.traffic.count(KINDS[type(message)], "received", len(body))
        if relay:
            local.wake.pusher()  # pass pushed writes on to our part of the tree
        if reply is None:
            return None
        encoded = self.codec.encode(reply)
        self.traffic.count("reply", "sent", len(encoded))
        return encoded
