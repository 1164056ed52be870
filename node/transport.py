"""Gossip over HTTP: one pooled httpx client, errors mapped to the core's types here."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

import httpx

from gossip.codec import Codec
from gossip.errors import PeerTimeout, PeerUnreachable
from gossip.messages import Message

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
        self._owns_client = client is None
        timeout = codec.config.request_timeout
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)),
            limits=httpx.Limits(max_keepalive_connections=64, keepalive_expiry=30),
            verify=tls if tls is not None else True,
        )
        self.bytes_sent = 0
        self.bytes_received = 0

    async def send(self, address: str, message: Message) -> Message | None:
        """POST one message; the peer's decoded answer, or None if it had none."""
        body = self.codec.encode(message)
        try:
            headers = {"content-type": CONTENT_TYPE, **self.auth.sign(body)}
            response = await self.client.post(address + GOSSIP_PATH, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise PeerTimeout(address, f"no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise PeerUnreachable(address, f"{type(exc).__name__}: {exc}") from exc
        self.bytes_sent += len(body)
        self.bytes_received += len(response.content)
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise PeerUnreachable(
                address, f"refused with {response.status_code}: {response.text[:200]}"
            )
        self.auth.verify(response.headers, response.content)
        return self.codec.decode(response.content)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
