"""HTTP/1.1 POSTs to peers over connections kept open, one at a time per connection.

Gossip sends small bodies to a few peers, many times a second; a general-purpose client
costs several times what the request does (measured in docs/benchmarks/ANALYSIS.md). This
one does only what peers need: a POST with a body and headers, an answer with a
Content-Length (or chunked), TLS when the address says https. Errors are the caller's
to map; a connection that failed is dropped, and one closed by the peer while idle is
replaced once.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import anyio.abc

MAX_HEAD = 64 * 1024  # bytes of status line and headers we read before giving up


class ProtocolError(Exception):
    """The peer's answer is not HTTP we understand."""


@dataclass
class _Connection:
    stream: anyio.abc.ByteStream
    buffer: bytearray = field(default_factory=bytearray)

    async def receive_until(self, marker: bytes) -> bytes:
        while (at := self.buffer.find(marker)) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise ProtocolError("answer head too long")
            self.buffer += await self.stream.receive()
        head = bytes(self.buffer[:at])
        del self.buffer[: at + len(marker)]
        return head

    async def receive_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += await self.stream.receive()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class PeerConnections:
    def __init__(self, tls: ssl.SSLContext | None = None, max_idle: int = 4) -> None:
        self.tls = tls
        self.max_idle = max_idle  # idle connections kept per peer
        self._idle: dict[str, list[_Connection]] = {}

    async def post(self, address: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body` to `address` + `path`. Raises OSError, anyio errors, ssl.SSLError
        or ProtocolError; the caller bounds the time."""
        idle = self._idle.setdefault(address, [])
        while idle:  # a kept connection, if the peer has not closed it meanwhile
            conn = idle.pop()
            try:
                return await self._exchange(address, conn, path, body, headers)
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                await conn.stream.aclose()  # closed while idle: try the next, or a new one
        conn = await self._connect(address)
        return await self._exchange(address, conn, path, body, headers)

    async def _connect(self, address: str) -> _Connection:
        url = urlsplit(address)
        https = url.scheme == "https"
        port = url.port or (443 if https else 80)
        if https:
            context = self.tls or ssl.create_default_context()
            stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                url.hostname or "", port, ssl_context=context, tls_standard_compatible=False
            )
        else:
            stream = await anyio.connect_tcp(url.hostname or "", port)
        return _Connection(stream)

    async def _exchange(self, address: str, conn: _Connection, path: str, body: bytes,
                        headers: dict[str, str]) -> Answer:
        host = urlsplit(address).netloc
        lines = [f"POST {path} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        keep = False
        try:
            await conn.stream.send(request)
            answer, keep = await self._answer(conn)
            return answer
        finally:
            if keep and len(self._idle[address]) < self.max_idle:
                self._idle[address].append(conn)
            else:
                await conn.stream.aclose()

    async def _answer(self, conn: _Connection) -> tuple[Answer, bool]:
        head = (await conn.receive_until(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.1 answer: {status_line[:80]!r}")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunks(conn)
        else:
            length = headers.get("content-length", "0")
            if not length.isdigit():
                raise ProtocolError(f"bad content-length {length!r}")
            body = await conn.receive_exactly(int(length))
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        return Answer(int(parts[1]), headers, body), keep

    async def _chunks(self, conn: _Connection) -> bytes:
        body = bytearray()
        while True:
            size_line = (await conn.receive_until(b"\r\n")).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                await conn.receive_until(b"\r\n")  # (no trailers from our peers)
                return bytes(body)
            body += await conn.receive_exactly(size)
            await conn.receive_exactly(2)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                with anyio.CancelScope(shield=True):
                    await conn.stream.aclose()
        self._idle.clear()
