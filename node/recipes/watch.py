"""Change streams: every change a node applies (its own writes and deletes, and its
peers' entries as they merge), once each, in the order it applied them.

    async for change in state.watch(prefix="flags:"):
        print(change.key, change.value, change.deleted)

Each watch has a bounded buffer. A consumer that falls more than `buffer` changes behind
is cut off: it receives what is buffered, then WatchDropped saying why; the node's writes
never wait for it. Not changes: an entry reaching its expiry (its write, with
`expires_at`, was the change), and collection of old tombstones. A node reset (its state
dropped for a peer's, see docs/PROTOCOL.md) ends every watch with WatchDropped at the next
change: read the state again and watch anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

from gossip.errors import GossipError, InvalidValue
from gossip.namespaces import RESERVED, is_reserved
from gossip.store import Entry

if TYPE_CHECKING:
    from gossip.protocol import GossipProtocol

DEFAULT_BUFFER = 1024
MAX_BUFFER = 100_000


class WatchDropped(GossipError):
    """A watch was cut off (it fell behind, or the node was reset); `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"watch dropped: {reason}")
        self.reason = reason


class Watch:
    """An async iterator of Entry, registered from the moment it is made. `aclose()` (or
    `async with`) ends it; one left unread is dropped once its buffer is full."""

    def __init__(self, feed: ChangeFeed, prefix: str, buffer: int, loop: asyncio.AbstractEventLoop) -> None:
        self.prefix = prefix
        self.buffer = buffer
        # Reserved keys (the project's own data) only for a watch of the reserved prefix.
        self.reserved = prefix.startswith(RESERVED)
        self._feed, self._loop = feed, loop
        self._items: deque[Entry] = deque()
        self._ready = asyncio.Event()
        self._signalled = False  # a wake-up is on its way to the loop
        self.dropped: str | None = None  # why it was cut off
        self.closed = False

    # Called by the feed, under the node's lock, from any thread: quick, never raises.
    def offer(self, entry: Entry) -> None:
        if len(self._items) >= self.buffer:
            self.cut(f"fell behind: {self.buffer} changes waited unread (the watch's buffer)")
            return
        self._items.append(entry)
        self._wake()

    def cut(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self._feed.remove(self)
            self._wake()

    def _wake(self) -> None:
        if not self._signalled:
            self._signalled = True
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self._loop.call_soon_threadsafe(self._ready.set)

    # The consumer's side, on its event loop.
    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Entry:
        while True:
            if self._items:
                return self._items.popleft()
            if self.dropped is not None:
                raise WatchDropped(self.dropped)
            if self.closed:
                raise StopAsyncIteration
            self._signalled = False  # what is offered or cut from now on wakes us: look once more
            if not (self._items or self.dropped is not None or self.closed):
                await self._ready.wait()
                self._ready.clear()

    async def aclose(self) -> None:
        self.closed = True
        self._feed.remove(self)
        self._items.clear()
        self._ready.set()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ChangeFeed:
    """Follows a node's store (one of Store.listeners) and hands each change to the
    watches whose prefix it has."""

    def __init__(self, protocol: GossipProtocol) -> None:
        self._protocol = protocol
        # Replaced whole, never changed in place (the listener reads it without a lock);
        # adding and removing hold _changing (a watch is cut from whichever thread merged).
        self._watches: tuple[Watch, ...] = ()
        self._changing = threading.Lock()
        self._resets = protocol.stats.resets
        protocol.store.listeners.append(self._on_change)

    def watch(self, prefix: str = "", buffer: int = DEFAULT_BUFFER) -> Watch:
        """A watch of the keys starting with `prefix`, on the running event loop."""
        if not isinstance(prefix, str):
            raise InvalidValue(f"prefix must be a string, got {type(prefix).__name__}")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or not 1 <= buffer <= MAX_BUFFER:
            raise InvalidValue(f"buffer must be a whole number from 1 to {MAX_BUFFER}, got {buffer!r}")
        watch = Watch(self, prefix, buffer, asyncio.get_running_loop())
        with self._changing:
            self._watches = (*self._watches, watch)
        return watch

    def remove(self, watch: Watch) -> None:
        with self._changing:
            self._watches = tuple(w for w in self._watches if w is not watch)

    def __len__(self) -> int:
        return len(self._watches)

    def _on_change(self, entry: Entry) -> None:
        if self._protocol.stats.resets != self._resets:
            self._resets = self._protocol.stats.resets
            for watch in self._watches:
                watch.cut("this node was reset: it dropped its state for a peer's; read it again")
            return
        if not self._watches:
            return
        reserved = is_reserved(entry.key)
        for watch in self._watches:
            if entry.key.startswith(watch.prefix) and (watch.reserved or not reserved):
                watch.offer(entry)
