"""Sending the flood: the plan's requests over httpx, oversized bodies over a raw
connection, and replays of legitimately signed messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import anyio
import httpx

from scripts.flood.attacks import Kind
from scripts.flood.forger import Attack, Forger
from scripts.flood.results import KindResult

HOST = "127.0.0.1"


def _pieces(attack: Attack, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body on the wire, in pieces: as is, or chunked (without the last, empty chunk)."""
    if not attack.stream:
        for i in range(0, len(attack.body), size):
            yield attack.body[i : i + size]
        return
    sent = 0
    while sent < attack.stream:
        n = min(size, attack.stream - sent)
        sent += n
        yield f"{n:x}\r\n".encode() + b" " * n + b"\r\n"


async def send_oversized(url: str, attack: Attack, timeout: float = 10.0) -> str:
    """Send a body larger than the node takes, over a raw connection, the way careful
    clients send large bodies: `Expect: 100-continue`, the body only once the node asks
    for it (or has not answered in timeout/2), and reading the answer while still
    writing. The node answers 413 and closes without reading the rest, so a client that
    writes the whole body before it reads (httpx does) is often reset before it sees the
    413. The status code as text, or the error's name."""
    parts = urlsplit(url)
    assert parts.hostname == HOST and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    length = "transfer-encoding: chunked" if attack.stream else f"content-length: {len(attack.body)}"
    head = [f"{attack.method} {attack.path} HTTP/1.1", f"host: {parts.netloc}", length, "connection: close",
            "expect: 100-continue", *(f"{k}: {v}" for k, v in attack.headers.items())]
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        status = asyncio.ensure_future(reader.readline())
        try:
            first = await asyncio.wait_for(asyncio.shield(status), timeout / 2)
        except TimeoutError:
            first = b""  # no interim answer: send the body anyway, as curl does
        if first.split()[1:2] == [b"100"]:
            await reader.readline()  # the blank line that ends the interim answer
            status = asyncio.ensure_future(reader.readline())
        for piece in _pieces(attack):
            if status.done():
                break  # answered: the rest of the body is not wanted
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)  # let the reader take an answer that has arrived
        if attack.stream and not status.done():
            # A node that took the whole body would wait for the last chunk: send it only if
            # no answer comes, so a correct node's 413 is never raced by a reset.
            try:
                await asyncio.wait_for(asyncio.shield(status), timeout / 2)
            except TimeoutError:
                writer.write(b"0\r\n\r\n")
        line = await asyncio.wait_for(status, timeout)
    except (ConnectionError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
    fields = line.split()
    return fields[1].decode() if len(fields) > 1 else "closed without an answer"


class _Replays:
    """Legitimately signed messages sent once each (and accepted), then replayed; a fresh
    one after `per_original` replays or half the replay window, so every replay is refused
    for its nonce, not its age."""

    def __init__(self, forger: Forger, client: httpx.AsyncClient, per_original: int = 25) -> None:
        self.forger, self.client, self.per_original = forger, client, per_original
        self.lock = anyio.Lock()
        self.current: Attack | None = None
        self.uses, self.sent_at, self.originals = 0, 0.0, 0

    async def next(self) -> Attack:
        async with self.lock:
            max_age = self.forger.config.replay_window / 2
            stale = time.monotonic() - self.sent_at > max_age
            if self.current is None or self.uses >= self.per_original or stale:
                original = self.forger.gossip(self.forger.exchange())
                response = await self.client.post(self.forger.url + "/gossip", content=original.body,
                                                  headers=original.headers)
                if response.status_code != 200:
                    raise RuntimeError(f"a legitimate exchange was refused: {response.status_code} "
                                       f"{response.text}")
                self.current, self.uses, self.sent_at = original, 0, time.monotonic()
                self.originals += 1
            self.uses += 1
            return self.current


async def send_plan(forger: Forger, plan: list[Kind], concurrency: int, deadline: float,
                    results: dict[str, KindResult]) -> tuple[int, int]:
    """Send the plan; (replay originals sent, transport errors)."""
    transport_errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        replays = _Replays(forger, client)
        queue = iter(plan)

        async def worker() -> None:
            nonlocal transport_errors
            for kind in queue:
                if time.monotonic() > deadline:
                    raise TimeoutError("the flood ran past its deadline")
                attack = await replays.next() if kind.name == "replayed" else kind.build(forger)
                result = results[kind.name]
                result.sent += 1
                if kind.raw:
                    status = await send_oversized(forger.url, attack)
                    result.statuses[status] += 1
                    transport_errors += not status.isdigit()
                    continue
                try:
                    headers = {k.encode(): v.encode("latin-1") for k, v in attack.headers.items()}
                    response = await client.request(attack.method, forger.url + attack.path,
                                                    content=attack.body, headers=headers)
                except httpx.TransportError as exc:
                    transport_errors += 1
                    result.statuses[type(exc).__name__] += 1
                    continue
                status = str(response.status_code)
                result.statuses[status] += 1
                if status not in result.sample:
                    try:
                        result.sample[status] = str(response.json().get("detail", ""))[:160]
                    except ValueError:
                        result.sample[status] = response.text[:160]

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return replays.originals, transport_errors
