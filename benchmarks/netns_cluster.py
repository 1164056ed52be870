"""A cluster of real nodes on network-namespace hosts (chaos.hosts), for the many-hosts
benchmarks: started per host, seeded by the first node of host 1, stopped by PID; every
node's answer to one path at once; waiting until every node sees all alive; the messages
they sent, by kind; and the dead marks they logged."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.system import LOG_DIR
from chaos.hosts import CLUSTER_NET, Hosts, start_node

PORT = 7300  # node i of a host listens on PORT + i on the host's addresses
_DEAD = re.compile(r"member (\S+) dead:")  # node.monitoring.memberlog's line for a member found dead


@dataclass(frozen=True)
class Node:
    name: str
    host: int
    url: str  # on the admin network: where the benchmark talks to it
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def cluster(hosts: Hosts, per_host: int, options: Sequence[str], logs: str) -> Iterator[list[Node]]:
    """per_host nodes on each host, seeded by the first node of host 1, with `options`;
    node NAME logs to LOG_DIR/<logs>-NAME.log (emptied first). Stopped by PID."""
    env = {"GOSSIP_KEY": secrets.token_hex(32)}
    seed = f"http://{hosts.cluster_ip(1)}:{PORT}"
    nodes: list[Node] = []
    LOG_DIR.mkdir(exist_ok=True)
    try:
        for host in range(1, hosts.count + 1):
            for i in range(per_host):
                name, port = f"h{host}n{i}", PORT + i
                args = ["--host", "0.0.0.0", "--port", str(port), "--node-id", name,
                        "--advertise", f"http://{hosts.cluster_ip(host)}:{port}",
                        "--allow", f"{CLUSTER_NET}.0/24", "--cluster-id", f"multihost-{hosts.tag}",
                        *(["--seeds", seed] if (host, i) != (1, 0) else []), *options]
                log = LOG_DIR / f"{logs}-{name}.log"
                log.unlink(missing_ok=True)  # (start_node appends: an earlier run's lines would count)
                proc = start_node(hosts.ns(host), args, log, env)
                nodes.append(Node(name, host, f"http://{hosts.admin_ip(host)}:{port}", proc))
        yield nodes
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes:
            try:
                n.proc.wait(15)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(5)


async def answers(client: httpx.AsyncClient, nodes: Sequence[Node], path: str,
                  patience: float = 0.0) -> list[httpx.Response | None]:
    """Every node's answer to GET `path` (None for a node that gave none), asking again
    for up to `patience` seconds: 50 nodes on 2 cores can be slow to answer."""

    async def one(node: Node) -> httpx.Response | None:
        deadline = time.monotonic() + patience
        while True:
            try:
                return await client.get(node.url + path)
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(0.5)

    return list(await asyncio.gather(*(one(n) for n in nodes)))


async def members_seen(client: httpx.AsyncClient, nodes: Sequence[Node]) -> tuple[int, int]:
    """The fewest live members any node sees (itself included), and the dead marks shown."""
    fewest, dead = len(nodes), 0
    for r in await answers(client, nodes, "/members"):
        if r is None or r.status_code != 200:
            return 0, dead
        statuses = [m["status"] for m in r.json()["members"]]
        fewest = min(fewest, statuses.count("alive"))
        dead += statuses.count("dead")
    return fewest, dead


async def wait_joined(client: httpx.AsyncClient, nodes: Sequence[Node], timeout: float) -> float:
    """Seconds until every node sees every node alive; raises if one exits or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for n in nodes:
            if n.proc.poll() is not None:
                raise RuntimeError(f"{n.name} exited with {n.proc.returncode}")
        if (await members_seen(client, nodes))[0] == len(nodes):
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the {len(nodes)} nodes did not all see each other within {timeout:.0f} s")


async def sent_by_kind(client: httpx.AsyncClient, nodes: Sequence[Node]) -> tuple[Counter[str], Counter[str]]:
    """Gossip messages all nodes sent so far, and their body bytes, by kind (exchange,
    reply, rumor, probe...), from their /metrics."""
    messages: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for r in await answers(client, nodes, "/metrics", patience=30.0):
        if r is None:
            raise RuntimeError("a node did not answer /metrics")
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                if sample.labels.get("direction") != "sent":
                    continue
                if sample.name == "gossip_messages_total":
                    messages[sample.labels["kind"]] += int(sample.value)
                elif sample.name == "gossip_message_bytes_total":
                    size[sample.labels["kind"]] += int(sample.value)
    return messages, size


def dead_marks(logs: str, nodes: int) -> Counter[str]:
    """How many times each member was declared dead, over the logs of the `nodes` nodes of
    `cluster(..., logs)` so far (a node logs each member it finds dead once per finding).
    Raises if a log is missing: a count of none would pass for no mark."""
    paths = list(LOG_DIR.glob(f"{logs}-*.log"))
    if len(paths) != nodes:
        raise RuntimeError(f"{len(paths)} logs of {nodes} nodes in {LOG_DIR}: removed during the run?")
    marks: Counter[str] = Counter()
    for path in paths:
        marks.update(_DEAD.findall(path.read_text(errors="replace")))
    return marks
