"""Tasks that live as long as a node's loops, started from anywhere: before the node
runs, from its event loop, or from a worker thread (plain `def` routes)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
from anyio.abc import TaskStatus

Task = Callable[[], Coroutine[Any, Any, None]]


class TaskHost:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._group: anyio.abc.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[Task] = []  # started before the node runs

    def start(self, task: Task) -> None:
        with self._lock:
            group, loop = self._group, self._loop
            if group is None or loop is None:
                self._waiting.append(task)
                return
        if _running_loop() is loop:
            group.start_soon(task)
        else:
            loop.call_soon_threadsafe(lambda: group.start_soon(task))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every task until cancelled (by the node's task group, when it stops)."""
        async with anyio.create_task_group() as group:
            with self._lock:
                self._group, self._loop = group, asyncio.get_running_loop()
                waiting, self._waiting = self._waiting, []
            for task in waiting:
                group.start_soon(task)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                with self._lock:
                    self._group = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
