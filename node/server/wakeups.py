"""The wake-ups of a node's loops: a write wakes the pusher, a deferred windowed count the
flusher, from the event loop or from any thread (FastAPI runs plain `def` routes in a
thread pool). node.server.pump waits on them; node.server.local_state rings them."""

from __future__ import annotations

import asyncio
import threading

import anyio


class Wakeups:
    def __init__(self) -> None:
        self.rumor_ready = anyio.Event()  # writes wait to be pushed
        self.counts_ready = anyio.Event()  # deferred windowed counts wait to be written
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0  # the thread running the loop, while the node runs
        self._wake_sent = False  # a wake from another thread is on its way to the loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the node runs in (the last one, once it stopped), or None."""
        return self._loop

    def bind(self) -> None:
        """Called in the node's event loop when its loops start."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._wake_sent = False  # (a wake sent to the loop of an earlier run never came)

    def pusher(self) -> None:
        """Start an eager push now, from the event loop or from any thread. From a thread,
        one wake at a time: the writes made before the loop takes it ride with it (a wake
        per write cost a system call and a switch to the loop's thread each)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self.rumor_ready.set()  # (not running yet: the first push takes it)
        elif not self._wake_sent:
            self._wake_sent = True
            loop.call_soon_threadsafe(self._woken)

    def flusher(self) -> None:
        """Have the deferred counts written (called when the first is taken since the last
        write: a wake per batch)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self.counts_ready.set()
        else:
            loop.call_soon_threadsafe(lambda: self.counts_ready.set())

    def _woken(self) -> None:
        self._wake_sent = False
        self.rumor_ready.set()

    async def wait_rumors(self) -> None:
        """Wait for a wake of the pusher, and take it."""
        await self.rumor_ready.wait()
        self.rumor_ready = anyio.Event()

    async def wait_counts(self) -> None:
        """Wait for a wake of the flusher, and take it."""
        await self.counts_ready.wait()
        self.counts_ready = anyio.Event()
