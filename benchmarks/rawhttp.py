"""A minimal keep-alive HTTP/1.1 client on asyncio streams.

The load generators run on the same two cores as the servers, so they use this rather
than a full client library: it costs a fraction of the CPU per request. It handles just
what uvicorn answers here (a Content-Length body).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from benchmarks.system import HOST


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        reused = self._writer is not None
        try:
            return await self._exchange(method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # The server closed a kept-alive connection before reading our request (idle
            # timeout): try once on a fresh one, as HTTP clients do.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            return await self._exchange(method, path, body)

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\nhost: {HOST}:{self.port}\r\n"
        if method == "POST":
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + body)
        try:
            header = await self._reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            length = 0
            for line in header.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return status, await self._reader.readexactly(length)
        except BaseException:
            self.close()
            raise

    async def get_json(self, path: str) -> tuple[int, Any]:
        status, data = await self.request("GET", path)
        return status, json.loads(data) if data else None

    async def post_json(self, path: str, payload: object) -> tuple[int, Any]:
        status, data = await self.request("POST", path, json.dumps(payload).encode())
        return status, json.loads(data) if data else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
