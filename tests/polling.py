"""Waiting for a condition in tests: poll with a deadline, never sleep and hope (a check
that returns at once, or one that awaits)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


def wait_until(
    check: Callable[[], bool], timeout: float = 30.0, what: str = "condition",
    detail: Callable[[], object] = lambda: "",
) -> float:
    """Poll until `check()`; the seconds it took. AssertionError (with `detail()`) at the deadline."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} {detail()}")
        time.sleep(0.05)
    return time.monotonic() - started


async def await_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition"
) -> float:
    """As wait_until, for a check that awaits."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await anyio.sleep(0.05)
    return time.monotonic() - started
