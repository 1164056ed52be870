"""Gossip over HTTP: POST one message, decode the answer; errors mapped to the core's
types here. Peers are reached over kept-alive connections (node.wire.connections), or through
an injected httpx client (tests route addresses to in-process apps that way)."""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

import anyio
import httpx

from gossip.codec import Codec
from gossip.errors import PeerRefused, PeerTimeout, PeerUnreachable
from gossip.messages import Exchange, Message, Reply, Rumor
from node.wire.connections import Answer, PeerConnections, ProtocolError
from node.wire.figures import OFFSET_BUCKETS, Buckets

GOSSIP_PATH = "/gossip"
CONTENT_TYPE = "application/json"
# The sender's wall time in ms, on every request and every answer (a signed message's
# signature covers it): what peers' clock offsets are estimated from (node.server.clockcheck).
# Nodes of earlier versions stamp only replies and refusals, and ignore it elsewhere.
TIME_HEADER = "x-gossip-time"
# On a refusal: the refusing error's type (ClockSkewRejected, NotAllowed, ...).
REFUSAL_HEADER = "x-gossip-refusal"
KINDS: dict[type, str] = {Exchange: "exchange", Reply: "reply", Rumor: "rumor"}
MAX_PEERS_TRACKED = 1024  # clock offset histograms kept, one per peer address


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def peer_time(headers: Mapping[str, str]) -> int | None:
    text = headers.get(TIME_HEADER, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


class Authenticator(Protocol):
    def sign(self, body: bytes) -> dict[str, str]: ...
    def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...


class ClockObserver(Protocol):
    """What is told the time stamped on each answer (node.server.clockcheck.ClockCheck)."""

    def observe(self, address: str, their_ms: int | None, received: float, sent: float) -> None: ...


class HttpTransport:
    def __init__(
        self,
        codec: Codec,
        client: httpx.AsyncClient | None,
        auth: Authenticator,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.codec = codec
        self.auth = auth
        self.timeout = codec.config.request_timeout
        self.client = client
        self.connections = PeerConnections(tls)
        self.bytes_sent = 0
        self.bytes_received = 0
        # For /metrics: messages and bytes by (kind, "sent" | "received"), served ones
        # included (SharedState counts those), and each peer's clock offset from ours.
        self.messages: Counter[tuple[str, str]] = Counter()
        self.message_bytes: Counter[tuple[str, str]] = Counter()
        self.offsets: dict[str, Buckets] = {}
        self.last_offset: dict[str, float] = {}  # seconds the peer's clock is ahead of ours
        self.clock: ClockObserver | None = None  # told the time stamped on each answer

    def count(self, kind: str, direction: str, size: int) -> None:
        self.messages[kind, direction] += 1
        self.message_bytes[kind, direction] += size

    async def send(self, address: str, message: Message) -> Message | None:
        """POST one message; the peer's decoded answer, or None if it had none."""
        body = self.codec.encode(message)
        sent_at, sent = wall_ms(), time.monotonic()
        headers = {"content-type": CONTENT_TYPE, TIME_HEADER: str(sent_at), **self.auth.sign(body)}
        try:
            with anyio.fail_after(self.timeout):
                answer = await self._post(address, body, headers)
        except TimeoutError as exc:
            raise PeerTimeout(address, f"no answer within {self.timeout} s") from exc
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ProtocolError,
                httpx.TransportError) as exc:
            raise PeerUnreachable(address, f"{type(exc).__name__}: {exc}") from exc
        received = time.monotonic()
        self.bytes_sent += len(body)
        self.bytes_received += len(answer.body)
        self.count(KINDS[type(message)], "sent", len(body))
        if (their_time := peer_time(answer.headers)) is not None:
            self._offset(address, their_time - (sent_at + wall_ms()) / 2)
        if answer.status == 204:
            self._clock(address, their_time, received, sent)
            return None
        if answer.status != 200:
            self._clock(address, their_time, received, sent)
            text = answer.body[:200].decode("utf-8", "replace")
            raise PeerRefused(address, answer.status, answer.headers.get(REFUSAL_HEADER, ""), text)
        self.count("reply", "received", len(answer.body))
        self.auth.verify(answer.headers, answer.body)
        reply = self.codec.decode(answer.body)
        # (by the address it advertises: a seed may be known by another name)
        self._clock(reply.sender.address, their_time, received, sent)
        return reply

    def _clock(self, address: str, their_time: int | None, received: float, sent: float) -> None:
        if self.clock is not None:
            self.clock.observe(address, their_time, received, sent)

    def _offset(self, address: str, offset_ms: float) -> None:
        """Take in one estimate of the peer's clock offset (its time at the middle of our
        round trip, against ours)."""
        buckets = self.offsets.get(address)
        if buckets is None:
            if len(self.offsets) >= MAX_PEERS_TRACKED:
                oldest = next(iter(self.offsets))
                del self.offsets[oldest]
                self.last_offset.pop(oldest, None)
            buckets = self.offsets[address] = Buckets(OFFSET_BUCKETS)
        buckets.observe(offset_ms / 1000)
        self.last_offset[address] = offset_ms / 1000

    async def _post(self, address: str, body: bytes, headers: dict[str, str]) -> Answer:
        if self.client is None:
            return await self.connections.post(address, GOSSIP_PATH, body, headers)
        response = await self.client.post(address + GOSSIP_PATH, content=body, headers=headers)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, headers, response.content)

    async def aclose(self) -> None:
        await self.connections.aclose()
