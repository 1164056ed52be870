"""Gossip over HTTP: POST one message, decode the answer; errors mapped to the core's
types here. Peers are reached over kept-alive connections (node.connections), or through
an injected httpx client (tests route addresses to in-process apps that way)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

import anyio
import httpx

from gossip.codec import Codec
from gossip.errors import PeerTimeout, PeerUnreachable
from gossip.messages import Message
from node.connections import Answer, PeerConnections, ProtocolError

GOSSIP_PATH = "/gossip"
CONTENT_TYPE = "application/json"


class Authenticator(Protocol):
    def sign(self, body: bytes) -> dict[str, str]: ...
    def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...


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

    async def send(self, address: str, message: Message) -> Message | None:
        """POST one message; the peer's decoded answer, or None if it had none."""
        body = self.codec.encode(message)
        headers = {"content-type": CONTENT_TYPE, **self.auth.sign(body)}
        try:
            with anyio.fail_after(self.timeout):
                answer = await self._post(address, body, headers)
        except TimeoutError as exc:
            raise PeerTimeout(address, f"no answer within {self.timeout} s") from exc
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ProtocolError,
                httpx.TransportError) as exc:  # fmt: skip
            raise PeerUnreachable(address, f"{type(exc).__name__}: {exc}") from exc
        self.bytes_sent += len(body)
        self.bytes_received += len(answer.body)
        if answer.status == 204:
            return None
        if answer.status != 200:
            text = answer.body[:200].decode("utf-8", "replace")
            raise PeerUnreachable(address, f"refused with {answer.status}: {text}")
        self.auth.verify(answer.headers, answer.body)
        return self.codec.decode(answer.body)

    async def _post(self, address: str, body: bytes, headers: dict[str, str]) -> Answer:
        if self.client is None:
            return await self.connections.post(address, GOSSIP_PATH, body, headers)
        response = await self.client.post(address + GOSSIP_PATH, content=body, headers=headers)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, headers, response.content)

    async def aclose(self) -> None:
        await self.connections.aclose()
