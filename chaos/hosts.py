"""Hosts as Linux network namespaces, with faults on their cluster network.

Each host has two links, each a veth pair into a bridge in the root namespace: a cluster
network (10.77.1.0/24) that gossip uses, and an admin network (10.77.2.0/24) that the
client uses. Faults touch only the cluster network, so the client always reaches every
node: a host's cluster link taken down (`cut`), or nftables rules in the host's namespace
on its cluster interface (`drop_from`, `lose`), each set in a chain of its own so faults
that overlap are lifted one by one. Needs root and `ip` (and `nft` for the rules);
everything is removed on close. One set of hosts exists at a time on the machine (a file
lock), since they share the subnets: processes running side by side take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CLUSTER_NET, ADMIN_NET = "10.77.1", "10.77.2"
CLUSTER_IF = "cl0"  # the cluster interface inside each namespace
TABLE = "inet chaos"  # the nftables table that holds the faults' chains
LOCK = Path(tempfile.gettempdir()) / "gossip-netns-tests.lock"
ROOT = Path(__file__).resolve().parent.parent
# The library under Debian's `faketime` command, in this machine's architecture's directory.
_FAKETIME = "faketime/libfaketime.so.1"
FAKETIME_LIB = next(Path("/usr/lib").glob(f"*/{_FAKETIME}"), Path("/usr/lib") / _FAKETIME)


def skewed_clock(seconds: float) -> dict[str, str]:
    """The environment that runs a process with its wall clock `seconds` off (libfaketime
    preloaded; its monotonic clock stays true). Not the `faketime` command: it keeps a
    semaphore per PID in /dev/shm that a killed wrapper leaves behind, and a later wrapper
    given the same PID then fails to start."""
    return {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": f"{seconds:+.3f}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}


def available() -> str | None:
    """Why namespaces cannot be used here, or None if they can."""
    if shutil.which("ip") is None:
        return "no `ip` command"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10).stdout


def remove_leftovers() -> None:
    """Namespaces and links of an earlier run that was killed before it could clean up:
    their subnets would clash with ours."""
    for name in re.findall(r"^(gossip-\w{4}-h\d+)", ip("netns", "list"), re.MULTILINE):
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", name)
    for name in re.findall(r"^\d+: (g[ca]\w{4}(?:br|\d+))[@:]", ip("-o", "link"), re.MULTILINE):
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", name)


def start_node(ns: str, args: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
               wrapper: Sequence[str] = (), module: str = "node") -> subprocess.Popen[bytes]:
    """`python -m node ARGS` inside the namespace `ns` (under `wrapper`, such as faketime),
    in a session of its own so that it and its children are signalled together, its output
    added to `log`. The caller stops it by its PID. `module` runs another module instead
    (`uvicorn`, for an app that embeds a node)."""
    argv = ["ip", "netns", "exec", ns, *wrapper, sys.executable, "-m", module, *args]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_node(proc: subprocess.Popen[bytes], grace: float = 10.0) -> bool:
    """Stop a node `start_node` started, its whole process group (a wrapper such as
    faketime runs the node as its child): SIGTERM (it leaves and saves its data), then
    SIGKILL if any of the group outlives `grace` seconds. Returns whether it had to be
    killed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _group_alive(proc.pid):
            return sig == signal.SIGKILL
    raise RuntimeError(f"process group {proc.pid} outlived SIGKILL by {grace:g} s")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Hosts:
    count: int = 2
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:4])
    _made: list[tuple[str, ...]] = field(default_factory=list)  # undo commands, newest last
    _lock: IO[str] | None = None

    def ns(self, host: int) -> str:
        return f"gossip-{self.tag}-h{host}"

    def cluster_ip(self, host: int) -> str:
        return f"{CLUSTER_NET}.{host}"

    def admin_ip(self, host: int) -> str:
        return f"{ADMIN_NET}.{host}"

    def _link(self, kind: str, host: int) -> str:
        return f"g{kind}{self.tag}{host}"  # root side of a veth pair (15 characters at most)

    def __enter__(self) -> Hosts:
        self._lock = open(LOCK, "w")  # noqa: SIM115 (held until close)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        remove_leftovers()
        try:
            for kind, net in (("c", CLUSTER_NET), ("a", ADMIN_NET)):
                bridge = f"g{kind}{self.tag}br"
                ip("link", "add", bridge, "type", "bridge")
                self._made.append(("link", "del", bridge))
                if kind == "a":  # the client, in the root namespace, lives on the admin net
                    ip("addr", "add", f"{net}.254/24", "dev", bridge)
                ip("link", "set", bridge, "up")
            for host in range(1, self.count + 1):
                ns = self.ns(host)
                ip("netns", "add", ns)
                self._made.append(("netns", "del", ns))
                ip("-n", ns, "link", "set", "lo", "up")
                for kind, net, inside in (("c", CLUSTER_NET, CLUSTER_IF), ("a", ADMIN_NET, "ad0")):
                    outside = self._link(kind, host)
                    ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns)
                    self._made.append(("link", "del", outside))
                    ip("link", "set", outside, "master", f"g{kind}{self.tag}br", "up")
                    ip("-n", ns, "addr", "add", f"{net}.{host}/24", "dev", inside)
                    ip("-n", ns, "link", "set", inside, "up")
        except BaseException:
            self.close()
            raise
        return self

    def cut(self, host: int) -> None:
        """Take the host off the cluster network (both directions)."""
        ip("link", "set", self._link("c", host), "down")

    def heal(self, host: int) -> None:
        ip("link", "set", self._link("c", host), "up")

    # -- nftables faults: each in a chain of its own, named by the caller --------------------

    def drop_from(self, host: int, sources: Iterable[int], chain: str) -> None:
        """The host stops receiving cluster traffic from `sources` (one way: what it sends
        still leaves; a TCP connection needs both ways, so neither side's requests work)."""
        addresses = ", ".join(self.cluster_ip(s) for s in sorted(set(sources)))
        self._rule(host, chain, f"ip saddr {{ {addresses} }} drop")

    def lose(self, host: int, percent: int, chain: str) -> None:
        """The host drops `percent` % of the cluster packets it receives, at random."""
        if not 0 < percent < 100:
            raise ValueError(f"packet loss must be between 1 and 99 %, not {percent}")
        self._rule(host, chain, f"numgen random mod 100 < {percent} drop")

    def lift(self, host: int, chain: str) -> None:
        """Remove the fault set as `chain` on the host (nothing if it is not there)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._nft(host, f"flush chain {TABLE} {chain}\ndelete chain {TABLE} {chain}\n")

    def lift_all(self) -> None:
        """Remove every nftables fault on every host."""
        for host in range(1, self.count + 1):
            self._nft(host, f"add table {TABLE}\ndelete table {TABLE}\n")

    def _rule(self, host: int, chain: str, rule: str) -> None:
        self._nft(host, f"add table {TABLE}\n"
                        f"add chain {TABLE} {chain} {{ type filter hook input priority 0; policy accept; }}\n"
                        f'add rule {TABLE} {chain} iifname "{CLUSTER_IF}" {rule}\n')

    def _nft(self, host: int, script: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.ns(host), "nft", "-f", "-"], input=script, check=True,
                       capture_output=True, text=True, timeout=10)

    def close(self) -> None:
        while self._made:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                ip(*self._made.pop())
        if self._lock is not None:
            self._lock.close()  # (releases the lock)
            self._lock = None

    def __exit__(self, *exc: object) -> None:
        self.close()
