"""Clusters for tests, your own included: N in-process nodes wired together with no
sockets, or N real processes (node.tools.local_cluster.LocalCluster). Fixtures:
node.tools.pytest_plugin."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import anyio
import httpx
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI

from gossip.config import Config
from node.server.discovery import process_alive
from node.server.settings import Settings
from node.state import SharedState
from node.tools.local_cluster import HOST, free_ports
from node.web.app import create_app


class _Network:
    """The in-process apps by host name; nodes in `cut` can neither reach nor be reached."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.cut: set[str] = set()


class _Wire(httpx.AsyncBaseTransport):
    """One sender's way into the network: delivers to the app named by the URL's host."""

    def __init__(self, network: _Network, sender: str | None) -> None:
        self.network, self.sender = network, sender

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.network.cut or self.sender in self.network.cut or host not in self.network.apps:
            raise httpx.ConnectError(f"{host} is unreachable from {self.sender}", request=request)
        return await self.network.apps[host].handle_async_request(request)


class InProcessCluster:
    """`async with InProcessCluster(3) as cluster:` runs 3 standalone nodes in this
    event loop; `cluster.states[i]` is node i's SharedState, `cluster.http(i)` a client
    for its HTTP API. Node i is reachable as http://node-i; node 0 seeds the others.
    Each counts as a host of its own, so it takes writes once it has compared its clock
    with another node's (node.server.clockcheck): the cluster is entered once they all have."""

    def __init__(self, nodes: int = 3, config: Config | None = None) -> None:
        self.config = config or Config.for_tests(cluster_id=f"test-{uuid.uuid4().hex[:8]}")
        self.names = [f"node-{i}" for i in range(nodes)]
        self._network = _Network()
        self.apps: list[FastAPI] = []
        self._stack = AsyncExitStack()

    def settings(self, i: int) -> Settings:
        seeds = ("http://node-0",) if i else ()
        return Settings(node_id=self.names[i], advertise=f"http://{self.names[i]}", seeds=seeds,
                        discovery_dir="off", config=self.config)

    @property
    def states(self) -> list[SharedState]:
        return [app.state.shared_state for app in self.apps]

    def http(self, i: int) -> httpx.AsyncClient:
        """A client for node i's HTTP API (base URL set), from outside any partition."""
        return httpx.AsyncClient(transport=_Wire(self._network, None), base_url=f"http://{self.names[i]}")

    def cut(self, i: int) -> None:
        """Partition node i away from every other node."""
        self._network.cut.add(self.names[i])

    def heal(self, i: int) -> None:
        self._network.cut.discard(self.names[i])

    async def converged(self, timeout: float = 10.0, among: list[int] | None = None) -> None:
        """Wait until every node (or those in `among`) holds the same live state;
        AssertionError on timeout."""
        states = self.states if among is None else [self.states[i] for i in among]
        deadline = time.monotonic() + timeout
        while len({s.state_hash() for s in states}) > 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"no convergence within {timeout}s")
            await anyio.sleep(self.config.gossip_interval / 4)

    async def __aenter__(self) -> InProcessCluster:
        for i, name in enumerate(self.names):
            wire = _Wire(self._network, name)
            client = httpx.AsyncClient(transport=wire, timeout=self.config.request_timeout)
            await self._stack.enter_async_context(client)
            app = create_app(self.settings(i), client)
            self._network.apps[name] = httpx.ASGITransport(app=app)
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            self.apps.append(app)
        for state in self.states:  # each on a "host" of its own: ready once it has compared clocks
            await state.writable()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


class UvicornWorkers:
    """`uvicorn APP --workers N` as a real process tree on 127.0.0.1, for testing an app
    that embeds shared state. Each worker is a node; `workers()` lists them (pid and
    gossip address) from the host directory they register in."""

    def __init__(
        self,
        app: str,
        workers: int = 2,
        env: dict[str, str] | None = None,
        discovery_dir: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.app, self.size = app, workers
        self.port = free_ports(1)[0]
        self.url = f"http://{HOST}:{self.port}"
        self.discovery_dir = discovery_dir or Path(tempfile.mkdtemp(prefix="gossip-workers-"))
        self.env = {
            **os.environ,
            "GOSSIP_CLUSTER_ID": f"workers-{uuid.uuid4().hex[:8]}",
            "GOSSIP_INTERVAL": "0.1",
            "GOSSIP_DISCOVERY_DIR": str(self.discovery_dir),
            **(env or {}),
        }
        self.cwd = cwd
        self.log = Path(tempfile.mkstemp(prefix="gossip-workers-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen_pids: set[int] = set()

    def start(self, timeout: float = 30.0) -> UvicornWorkers:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", self.app, "--host", HOST, "--port", str(self.port),
                 "--workers", str(self.size), "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def workers(self) -> dict[int, str]:
        """pid -> gossip address of every live registered worker."""
        found = {}
        for file in self.discovery_dir.glob("*.json"):
            try:
                record = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            if process_alive(int(record["pid"])):
                found[int(record["pid"])] = record["address"]
        self._seen_pids.update(found)
        return found

    def wait_ready(self, timeout: float = 30.0) -> dict[int, str]:
        """Wait until N workers are registered and each sees N live members."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    tail = self.log.read_text()[-3000:]
                    raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{tail}")
                workers = self.workers()
                try:
                    if len(workers) == self.size and all(
                        live_members(client, address) >= self.size for address in workers.values()
                    ):
                        return workers
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(workers)} of {self.size} workers ready after {timeout}s")
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the supervisor (it stops its workers), then SIGKILL any worker we ever
        saw that outlived the deadline."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self._seen_pids:
            if process_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> UvicornWorkers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def live_members(client: httpx.Client, address: str) -> int:
    """How many members the node at `address` (a base URL) shows as alive."""
    members = client.get(address + "/members").json()["members"]
    return sum(1 for m in members if m["status"] == "alive")


@contextlib.contextmanager
def node_in_thread(settings: Settings | None = None) -> Iterator[SharedState]:
    """A node alone whose loops run in an event loop of their own, in a thread, while the
    context is open: for synchronous code that uses one (a `limits` storage, a TestClient
    entered without the app's lifespan). Stopped, and its loops ended, on exit."""
    settings = settings or Settings(node_id=f"solo-{uuid.uuid4().hex[:8]}", discovery_dir="off",
                                    config=Config.for_tests())
    state = SharedState(settings)
    with start_blocking_portal() as portal:
        future, _ = portal.start_task(state.run)
        try:
            yield state
        finally:
            future.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError):
                future.result(timeout=10)
            portal.call(state.aclose)
