"""Real `python -m node` processes on the namespace hosts, and what the faults do to them:
kill -9, SIGSTOP/SIGCONT, restarts with a skewed clock (libfaketime) or a wiped data
directory. Every node keeps a --data-dir, so a restart (a skew change, the heal) keeps its
state unless a fault wiped it on purpose. Processes are addressed by PID (each node leads a
process group of its own); `close` stops every one of them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from chaos.hosts import CLUSTER_NET, Hosts, skewed_clock, start_node, stop_node
from chaos.setup import Setup

BASE_PORT = 7400
TOKEN = "chaos-api-token"  # the api token every node requires for writes and /admin


@dataclass(frozen=True)
class NodeSpec:
    name: str
    host: int
    port: int


@dataclass
class KeyRing:
    """The cluster keys a node starting now is given: the one it signs with, and the
    others it accepts (a rotation changes them while the nodes run)."""

    primary: str
    accepted: tuple[str, ...] = ()


@dataclass
class Fleet:
    hosts: Hosts
    workdir: Path
    keys: KeyRing
    setup: Setup  # the settings every node starts with
    cluster_id: str = "chaos"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    skews: dict[int, float] = field(default_factory=dict)  # host -> seconds its clock is off
    paused: set[str] = field(default_factory=set)
    _locks: dict[str, threading.RLock] = field(default_factory=dict)

    @property
    def nodes(self) -> list[NodeSpec]:
        per = self.setup.nodes_per_host
        return [NodeSpec(f"n{(h - 1) * per + i}", h, BASE_PORT + i)
                for h in range(1, self.hosts.count + 1) for i in range(1, per + 1)]

    def spec(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)

    def on_host(self, host: int) -> list[str]:
        return [n.name for n in self.nodes if n.host == host]

    def url(self, name: str) -> str:
        """Where the client reaches the node: the admin network, never cut by faults."""
        n = self.spec(name)
        return f"http://{self.hosts.admin_ip(n.host)}:{n.port}"

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start(self, name: str) -> None:
        """Start the node, unless it runs already."""
        with self._lock(name):
            if name not in self.procs:
                self._start(name)

    def _start(self, name: str) -> None:
        n = self.spec(name)
        seeds = ",".join(f"http://{self.hosts.cluster_ip(o.host)}:{o.port}" for o in self.nodes if o != n)
        args = [
            "--host", "0.0.0.0", "--port", str(n.port), "--node-id", n.name,
            "--advertise", f"http://{self.hosts.cluster_ip(n.host)}:{n.port}", "--seeds", seeds,
            "--allow", f"{CLUSTER_NET}.0/24", "--cluster-id", self.cluster_id,
            "--interval", str(self.setup.interval), "--max-offset", str(self.setup.max_offset),
            "--data-dir", str(self.workdir / "data" / name), "--log-level", "warning",
        ]
        if self.setup.probe_interval:
            args += ["--probe-interval", str(self.setup.probe_interval),
                     "--probe-timeout", str(self.setup.probe_timeout)]
        env = {"GOSSIP_KEY": self.keys.primary, "GOSSIP_ACCEPTED_KEYS": ",".join(self.keys.accepted),
               "GOSSIP_API_TOKEN": TOKEN}
        if skew := self.skews.get(n.host, 0.0):
            env.update(skewed_clock(skew))
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log(name), "ab") as log:
            log.write(f"== chaos: started{f' with the clock {skew:+.3f} s off' if skew else ''}\n".encode())
        self.procs[name] = start_node(self.hosts.ns(n.host), args, self.log(name), env)

    def kill(self, name: str, wipe: bool = False) -> None:
        """kill -9: no goodbye, no last snapshot; with `wipe`, the data directory goes too."""
        with self._lock(name):
            self._end(name, signal.SIGKILL)
            if wipe:
                shutil.rmtree(self.workdir / "data" / name, ignore_errors=True)

    def restart(self, name: str) -> None:
        """A clean stop (SIGTERM: the node leaves and writes its last snapshot), if it runs,
        then a start with the fleet's current skews and keys."""
        with self._lock(name):
            self._end(name, signal.SIGTERM)
            self.start(name)

    def _end(self, name: str, sig: signal.Signals) -> None:
        """Signal the node's process group and wait until it is gone: only then does the
        node stop being tracked, so nothing can start beside it or wipe its data under it."""
        proc = self.procs.get(name)
        if proc is None:
            return
        if name in self.paused:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            proc.wait(10)
        elif stop_node(proc):
            with open(self.log(name), "ab") as log:  # (a stop that hangs is a finding of its own)
                log.write(f"== chaos: still running 10 s after {sig.name}: killed (SIGKILL)\n".encode())
        self.paused.discard(name)
        del self.procs[name]

    def pause(self, name: str) -> None:
        with self._lock(name):
            if (proc := self.procs.get(name)) is not None:
                os.killpg(proc.pid, signal.SIGSTOP)
                self.paused.add(name)

    def resume(self, name: str) -> None:
        with self._lock(name):
            if (proc := self.procs.get(name)) is not None and name in self.paused:
                os.killpg(proc.pid, signal.SIGCONT)
                self.paused.discard(name)

    def _lock(self, name: str) -> threading.RLock:
        """One fault at a time on a node: the schedule keeps them apart, but a slow stop
        can run into the next one."""
        return self._locks.setdefault(name, threading.RLock())

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None and name not in self.paused

    def exited(self) -> dict[str, int]:
        """Nodes that died without being told to: name -> exit code."""
        return {name: code for name, p in self.procs.items() if (code := p.poll()) is not None}

    def close(self) -> None:
        """kill -9 every node at once (the run is over: nothing to save), then reap them."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for name in list(self.procs):
            with self._lock(name):
                self._end(name, signal.SIGKILL)
