"""The legitimate reader: GET /get timed over and over while the flood runs, in a process
of its own."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time
from typing import Any

import httpx

from scripts.flood.forger import PROBE_KEY


def probe_reads(url: str, token: str, stop: multiprocessing.synchronize.Event, out: Any, max_samples: int,
                pause: float) -> None:
    """GET /get?key=PROBE_KEY over and over (one connection, `pause` s apart) until `stop`
    is set or `max_samples` are taken; put (latencies in s, failures) on `out`."""
    latencies: list[float] = []
    failures = 0
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=10.0, headers=headers) as client:
        client.get("/health")  # open the connection before timing
        while not stop.is_set() and len(latencies) < max_samples:
            started = time.perf_counter()
            try:
                ok = client.get("/get", params={"key": PROBE_KEY}).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok
            time.sleep(pause)
    out.put((latencies, failures))


class Prober:
    """Runs probe_reads in another process, so the flood's own CPU use in this process
    does not delay the reader's measurements through the GIL."""

    def __init__(self, url: str, token: str, max_samples: int = 10**9, pause: float = 0.002) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.queue: Any = ctx.Queue()
        args = (url, token, self.stop, self.queue, max_samples, pause)
        self.process = ctx.Process(target=probe_reads, args=args, daemon=True)
        self.process.start()

    def result(self, stop: bool = True, timeout: float = 120.0) -> tuple[list[float], int]:
        """Collect what the reader measured: stop it now, or let it finish its samples."""
        if stop:
            self.stop.set()
        try:
            latencies, failures = self.queue.get(timeout=timeout)
        finally:
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        return latencies, failures
