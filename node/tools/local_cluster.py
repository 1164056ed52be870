"""N `gossip-node` processes on 127.0.0.1 (LocalCluster): started and waited for until
they see each other, killed, paused, restarted, left, stopped by PID; and what the nodes
say of one another (the status report, and what the others think of a node that is not
up). The launcher `gossip-cluster` (node.tools.cluster) and the tests run clusters so."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from gossip.config import Config

HOST = "127.0.0.1"
DEFAULT_INTERVAL = Config.gossip_interval


def free_ports(count: int) -> list[int]:
    """Ports the OS reports free right now (a small race remains until bound)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for every node: its certificate and key, and the CA that signs peers."""

    cert: Path
    key: Path
    ca: Path

    def client(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


class LocalCluster:
    """N `gossip-node` processes. Node i (from 1) is `n<i>`; node 1 is every other
    node's only seed, so membership is learned through gossip. Gossip is signed with a
    fresh cluster key unless `key=None`."""

    def __init__(
        self,
        nodes: int = 5,
        base_port: int = 0,
        interval: float = DEFAULT_INTERVAL,
        fanout: int = 3,
        eager_push: bool = True,
        extra_args: Sequence[str] = (),
        log_dir: Path | None = None,
        cluster_id: str | None = None,
        key: str | None = "generate",
        tls: TlsFiles | None = None,
        env: dict[str, str] | None = None,
        data: bool = False,
    ) -> None:
        if nodes < 1:
            raise ClusterError("a cluster needs at least one node")
        self.size = nodes
        self.ports = free_ports(nodes) if base_port == 0 else list(range(base_port, base_port + nodes))
        self.ids = [f"n{i}" for i in range(1, nodes + 1)]
        self.tls = tls
        scheme = "https" if tls else "http"
        self.urls = [f"{scheme}://{HOST}:{p}" for p in self.ports]
        self.key = secrets.token_hex(32) if key == "generate" else key
        self.env = {**(env or {})}
        if self.key:
            self.env["GOSSIP_KEY"] = self.key  # not a flag: flags show in ps
        if tls:
            self.env.update(GOSSIP_TLS_CERT=str(tls.cert), GOSSIP_TLS_KEY=str(tls.key),
                            GOSSIP_TLS_CA=str(tls.ca))
        self.interval, self.fanout, self.eager_push = interval, fanout, eager_push
        self.extra_args = list(extra_args)
        self.cluster_id = cluster_id or f"local-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="gossip-cluster-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.data = data  # each node keeps a snapshot in <log_dir>/<id>-data
        self.down: set[str] = set()  # nodes stopped (kill, leave) or found dead
        self.paused: set[str] = set()  # nodes stopped with SIGSTOP

    def command(self, index: int) -> list[str]:
        cmd = [
            sys.executable, "-m", "node",
            "--host", HOST, "--port", str(self.ports[index]), "--node-id", self.ids[index],
            "--cluster-id", self.cluster_id, "--interval", str(self.interval),
            "--fanout", str(self.fanout), "--eager-push", "on" if self.eager_push else "off",
        ]
        if index > 0:
            cmd += ["--seeds", self.urls[0]]
        if self.data:
            cmd += ["--data-dir", str(self.log_dir / f"{self.ids[index]}-data")]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for port in self.ports:
            with socket.socket() as s:
                if s.connect_ex((HOST, port)) == 0:
                    raise ClusterError(f"port {port} is already in use; pick another --base-port")
        try:
            for i, node_id in enumerate(self.ids):
                self.start_node(node_id)
                if i == 0:
                    self.wait_healthy([node_id], timeout)
            self.wait_healthy(self.ids, timeout)
            self.wait_members(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, node_id: str, extra_args: Sequence[str] = ()) -> None:
        index = self.ids.index(node_id)
        log = open(self.log_dir / f"{node_id}.log", "ab")  # noqa: SIM115 (the child owns it)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        root = Path(__file__).resolve().parents[2]
        self.procs[node_id] = subprocess.Popen(
            [*self.command(index), *extra_args], stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children by PID
        )
        log.close()

    def http_verify(self) -> ssl.SSLContext | bool:
        """What an httpx client talking to the nodes should pass as `verify`."""
        return self.tls.client() if self.tls else True

    def url(self, node_id: str) -> str:
        return self.urls[self.ids.index(node_id)]

    def _poll(self, what: str, timeout: float, check: Callable[[httpx.Client], bool]) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, verify=self.http_verify()) as client:
            while True:
                for node_id, proc in self.procs.items():
                    if proc.poll() is not None and node_id not in self.down:
                        tail = (self.log_dir / f"{node_id}.log").read_text()[-2000:]
                        raise ClusterError(f"node {node_id} exited with {proc.returncode}:\n{tail}")
                try:
                    if check(client):
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ClusterError(f"timed out after {timeout}s waiting for {what}")
                time.sleep(0.05)

    def wait_healthy(self, node_ids: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until the nodes serve: /health answers 200, or 503 while a node is not in
        the cluster yet (or cannot be: its answer says why)."""

        def healthy(client: httpx.Client) -> bool:
            return all(client.get(self.url(n) + "/health", headers=self.headers()).status_code in (200, 503)
                       for n in node_ids)

        self._poll(f"{', '.join(node_ids)} to answer /health", timeout, healthy)

    def wait_members(self, timeout: float = 30.0) -> None:
        def complete(client: httpx.Client) -> bool:
            for url in self.urls:
                members = client.get(url + "/members", headers=self.headers()).json()["members"]
                if len(members) < self.size:
                    return False
            return True

        self._poll(f"every node to see all {self.size} members", timeout, complete)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every node we started, then SIGKILL whatever outlives the deadline."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def kill(self, node_id: str, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signal one node; for SIGKILL and SIGTERM, wait until it is gone."""
        proc = self.procs[node_id]
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout)
            self.down.add(node_id)
            self.paused.discard(node_id)
        elif sig == signal.SIGSTOP:
            self.paused.add(node_id)
        elif sig == signal.SIGCONT:
            self.paused.discard(node_id)

    def leave(self, node_id: str) -> None:
        """Stop a node gracefully: it tells its peers it is leaving, then exits."""
        self.kill(node_id, signal.SIGTERM)

    def restart(self, node_id: str, timeout: float = 30.0, extra_args: Sequence[str] = ()) -> None:
        """Start a stopped (or running: it is killed first) node again, same id and
        port, and, with `data`, the same data directory."""
        if self.procs[node_id].poll() is None:
            self.kill(node_id)
        self.start_node(node_id, extra_args)
        self.down.discard(node_id)
        self.wait_healthy([node_id], timeout)

    # -- the cluster's own view --------------------------------------------------------------

    def state(self, node_id: str) -> str:
        """`up`, `paused`, or `down (...)` with how its process ended."""
        code = self.procs[node_id].poll()
        if code is None:
            return "paused" if node_id in self.paused else "up"
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        return f"down ({how})"

    def headers(self) -> dict[str, str]:
        """What a client of the nodes sends: their api token, if they have one."""
        token = self.env.get("GOSSIP_API_TOKEN")
        return {"authorization": f"Bearer {token}"} if token else {}

    def ask(self, client: httpx.Client, node_id: str, path: str) -> Any:
        """A running node's JSON answer to GET `path`; None if it is not up or fails to answer."""
        if self.state(node_id) != "up":
            return None
        try:
            reply = client.get(self.url(node_id) + path, headers=self.headers())
            return reply.json() if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def member_tables(self, client: httpx.Client) -> dict[str, list[dict[str, Any]] | None]:
        """Each running node's /members (None where it does not answer)."""
        tables = {}
        for node_id in self.ids:
            if self.state(node_id) == "up":
                answer = self.ask(client, node_id, "/members")
                tables[node_id] = answer["members"] if answer else None
        return tables

    def status_report(self, client: httpx.Client) -> str:
        """Each node's state, its member table summed up, its key count and digest, then
        whether the digests agree; for a node not up, what the others think of it."""
        tables = self.member_tables(client)
        rows = [f"  {'node':<6} {'state':<24} {'pid':>7}  {'keys':>5}  {'digest':<10} its members"]
        digests: dict[str, list[str]] = {}
        for node_id, proc in self.procs.items():
            state = self.state(node_id)
            digest = self.ask(client, node_id, "/digest")
            table = tables.get(node_id)
            if digest is not None and table is not None:
                digests.setdefault(digest["digest"], []).append(node_id)
                counts = Counter(str(m["status"]) for m in table)
                others = {s: [m["id"] for m in table if m["status"] == s] for s in counts if s != "alive"}
                summary = ", ".join(f"{counts[s]} {s}" + (f" ({', '.join(others[s])})" if s in others else "")
                                    for s in sorted(counts, key=_status_order))
                rows.append(f"  {node_id:<6} {state:<24} {proc.pid:>7}  {digest['keys']:>5}  "
                            f"{digest['digest'][:8]:<10} {summary}")
            else:
                seen = "no answer" if state == "up" else describe_opinions(opinions(tables, node_id))
                rows.append(f"  {node_id:<6} {state:<24} {proc.pid:>7}  {'-':>5}  {'-':<10} {seen}")
        if len(digests) == 1:
            rows.append(f"  digests: the {len(next(iter(digests.values())))} nodes that answered agree")
        elif digests:
            groups = [f"{', '.join(nodes)} at {d[:8]}" for d, nodes in digests.items()]
            rows.append("  digests differ: " + "; ".join(groups))
        return "\n".join(rows)

    def command_line(self, line: str) -> str:
        """Carry out a typed command (`kill n3`, `leave n3`, `restart n3`, `pause n3`,
        `resume n3`, `status`); what to print."""
        words = line.split()
        actions: dict[str, Callable[[str], object]] = {
                   "kill": self.kill, "leave": self.leave, "restart": self.restart,
                   "pause": lambda n: self.kill(n, signal.SIGSTOP),
                   "resume": lambda n: self.kill(n, signal.SIGCONT)}
        if words == ["status"]:
            with httpx.Client(timeout=1.0, verify=self.http_verify()) as client:
                return self.status_report(client)
        if len(words) == 2 and words[0] in actions and words[1] in self.procs:
            actions[words[0]](words[1])
            return f"  {words[0]} {words[1]}: done (pid {self.procs[words[1]].pid}, {self.state(words[1])})"
        return "  commands: kill|leave|restart|pause|resume <node id>, status"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _status_order(status: str) -> int:
    order = ("alive", "suspect", "dead", "left", "not a member", "no answer")
    return order.index(status) if status in order else len(order)


def opinions(tables: dict[str, list[dict[str, Any]] | None], node_id: str) -> dict[str, list[str]]:
    """What the other nodes think of `node_id`: status -> the nodes that think so."""
    seen: dict[str, list[str]] = {}
    for observer, table in tables.items():
        if observer == node_id:
            continue
        if table is None:
            status = "no answer"
        else:
            status = next((str(m["status"]) for m in table if m["id"] == node_id), "not a member")
        seen.setdefault(status, []).append(observer)
    return seen


def describe_opinions(seen: dict[str, list[str]]) -> str:
    """`dead on n1, n2; suspect on n4`, or `no other node answers`."""
    parts = [f"{s} on {', '.join(seen[s])}" for s in sorted(seen, key=_status_order)]
    return "; ".join(parts) or "no other node answers"
