"""Gossip over HTTP: POST one message, decode the answer; errors mapped to the core's
types here. Peers are reached over kept-alive connections (node.wire.connections), or through
an injected httpx client (tests route addresses to in-process apps that way).

The seam: the loops that send (node.server.pump) ask only for a `Transport`; what it needs
comes in explicitly: the codec, a `Signer` (node.server.inbox.Signatures), the `Traffic` it
counts on (node.wire.traffic), and a `ClockObserver` told the time on each answer. Direct
probes (R23, node.server.probing) go by the same `Transport`."""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import anyio

from gossip.codec import Codec
from gossip.errors import PeerRefused, PeerTimeout, PeerUnreachable
from gossip.messages import Exchange, Message, Reply, Rumor
from gossip.probe_messages import Probe
from node.wire.connections import Answer, PeerConnections, ProtocolError
from node.wire.traffic import Traffic

if TYPE_CHECKING:
    import httpx  # (imported with an injected client only: a node on its own never loads it)

GOSSIP_PATH = "/gossip"
PROBE_PATH = "/probe"  # direct probes (R23): one-way messages, answered with a bare 204
CONTENT_TYPE = "application/json"
# The sender's wall time in ms, on every request and every answer (a signed message's
# signature covers it): what peers' clock offsets are estimated from (node.server.clockcheck).
# Nodes of earlier versions stamp only replies and refusals, and ignore it elsewhere.
TIME_HEADER = "x-gossip-time"
# On a refusal: the refusing error's type (ClockSkewRejected, NotAllowed, ...).
REFUSAL_HEADER = "x-gossip-refusal"
KINDS: dict[type, str] = {Exchange: "exchange", Reply: "reply", Rumor: "rumor"}


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def peer_time(headers: Mapping[str, str]) -> int | None:
    text = headers.get(TIME_HEADER, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


class Transport(Protocol):
    """How a node's messages reach its peers."""

    async def send(self, address: str, message: Message) -> Message | None:
        """The peer's answer (None if it has none); raises PeerError if it fails."""
        ...

    async def send_probe(self, address: str, probe: Probe) -> bool:
        """A probe message (R23), one-way: whether it got through; never raises for a
        peer's failure."""
        ...

    async def aclose(self) -> None: ...


class Signer(Protocol):
    """Signatures on what we send, and the check of those on what we are answered."""

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
        signer: Signer,
        traffic: Traffic,
        clock: ClockObserver | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.codec = codec
        self.signer = signer
        self.traffic = traffic
        self.clock = clock  # told the time stamped on each answer
        self.timeout = codec.config.request_timeout
        self.client = client
        self.connections = PeerConnections(tls)

    async def send(self, address: str, message: Message) -> Message | None:
        """POST one message; the peer's decoded answer, or None if it had none."""
        body = self.codec.encode(message)
        sent_at, sent = wall_ms(), time.monotonic()
        headers = {"content-type": CONTENT_TYPE, TIME_HEADER: str(sent_at), **self.signer.sign(body)}
        try:
            with anyio.fail_after(self.timeout):
                answer = await self._post(address, body, headers)
        except TimeoutError as exc:
            raise PeerTimeout(address, f"no answer within {self.timeout} s") from exc
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ProtocolError) as exc:
            raise PeerUnreachable(address, f"{type(exc).__name__}: {exc}") from exc
        received = time.monotonic()
        traffic = self.traffic
        traffic.round_trip(len(body), len(answer.body))
        traffic.count(KINDS[type(message)], "sent", len(body))
        if (their_time := peer_time(answer.headers)) is not None:
            traffic.offset(address, their_time - (sent_at + wall_ms()) / 2)
        if answer.status == 204:
            self._clock(address, their_time, received, sent)
            return None
        if answer.status != 200:
            self._clock(address, their_time, received, sent)
            text = answer.body[:200].decode("utf-8", "replace")
            raise PeerRefused(address, answer.status, answer.headers.get(REFUSAL_HEADER, ""), text)
        traffic.count("reply", "received", len(answer.body))
        self.signer.verify(answer.headers, answer.body)
        reply = self.codec.decode(answer.body)
        # (by the address it advertises: a seed may be known by another name)
        self._clock(reply.sender.address, their_time, received, sent)
        return reply

    async def send_probe(self, address: str, probe: Probe) -> bool:
        """POST one probe message (one-way: the answer is a bare 204). Whether it got
        through; a probe that did not is as good as lost, which the probes allow for."""
        body = self.codec.encode_probe(probe)
        headers = {"content-type": CONTENT_TYPE, TIME_HEADER: str(wall_ms()), **self.signer.sign(body)}
        try:
            with anyio.fail_after(self.timeout):
                answer = await self._post(address, body, headers, PROBE_PATH)
        except (TimeoutError, OSError, anyio.EndOfStream, anyio.BrokenResourceError, ProtocolError,
                PeerUnreachable):
            return False
        self.traffic.bytes_sent += len(body)
        self.traffic.count("probe", "sent", len(body))
        return answer.status == 204

    def _clock(self, address: str, their_time: int | None, received: float, sent: float) -> None:
        if self.clock is not None:
            self.clock.observe(address, their_time, received, sent)

    async def _post(self, address: str, body: bytes, headers: dict[str, str],
                    path: str = GOSSIP_PATH) -> Answer:
        if self.client is None:
            return await self.connections.post(address, path, body, headers)
        import httpx

        try:
            response = await self.client.post(address + path, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise PeerUnreachable(address, f"{type(exc).__name__}: {exc}") from exc
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, headers, response.content)

    async def aclose(self) -> None:
        await self.connections.aclose()
