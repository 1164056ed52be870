"""Part 6, many hosts: N=50 real nodes over 5 network-namespace hosts (10 per host), with
the member views of earlier versions (every member in every message) and sampled views
(the default, and one smaller than N) side by side in one run: bytes per gossip message,
propagation of a write to every node, idle CPU per node, and false dead marks (no node
fails in this run)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.report import Section, ms
from benchmarks.system import LOG_DIR, cpu_seconds
from chaos.hosts import CLUSTER_NET, Hosts, available, start_node
from gossip.config import Config
from node.tools.propagation import percentile

PORT = 7300  # node i of a host listens on PORT + i on the host's addresses
# The configurations compared, by the node options that make them.
VIEWS: dict[str, list[str]] = {
    "whole views (before)": ["--view-size", str(Config.max_members_per_message)],
    "sampled views (default)": [],
    # Smaller than N here, as the default is at N > 48: the sampling and its detector at work.
    "sampled views of 16": ["--view-size", "16"],
}
POLL = 0.02  # seconds between one reader's polls while a write spreads
TIMEOUT = 30.0


@dataclass(frozen=True)
class Node:
    name: str
    host: int
    url: str  # on the admin network: where the benchmark talks to it
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def _cluster(hosts: Hosts, per_host: int, options: Sequence[str], label: str) -> Iterator[list[Node]]:
    """per_host nodes on each host, seeded by the first node of host 1; stopped by PID."""
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
                proc = start_node(hosts.ns(host), args, LOG_DIR / f"multihost-{label}-{name}.log", env)
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


async def _all(client: httpx.AsyncClient, nodes: Sequence[Node], path: str,
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


async def _members_seen(client: httpx.AsyncClient, nodes: Sequence[Node]) -> tuple[int, int]:
    """The fewest live members any node sees (itself included), and the dead marks shown."""
    fewest, dead = len(nodes), 0
    for r in await _all(client, nodes, "/members"):
        if r is None or r.status_code != 200:
            return 0, dead
        statuses = [m["status"] for m in r.json()["members"]]
        fewest = min(fewest, statuses.count("alive"))
        dead += statuses.count("dead")
    return fewest, dead


async def _wait_joined(client: httpx.AsyncClient, nodes: Sequence[Node], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for n in nodes:
            if n.proc.poll() is not None:
                raise RuntimeError(f"{n.name} exited with {n.proc.returncode}")
        if (await _members_seen(client, nodes))[0] == len(nodes):
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the {len(nodes)} nodes did not all see each other within {timeout:.0f} s")


async def _spread(client: httpx.AsyncClient, nodes: Sequence[Node], writer: Node) -> float:
    """Seconds from the start of a write on `writer` until every node reads it."""
    key, value = f"mh-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    started = time.perf_counter()
    r = await client.post(writer.url + "/set", json={"key": key, "value": value})
    r.raise_for_status()

    async def watch(node: Node) -> None:
        while time.perf_counter() - started < TIMEOUT:
            with contextlib.suppress(httpx.HTTPError):
                got = await client.get(node.url + "/get", params={"key": key})
                if got.status_code == 200 and got.json()["value"] == value:
                    return
            await asyncio.sleep(POLL)
        raise TimeoutError(f"{node.name} did not read {key} within {TIMEOUT:.0f} s")

    await asyncio.gather(*(watch(n) for n in nodes))
    return time.perf_counter() - started


async def _traffic(client: httpx.AsyncClient, nodes: Sequence[Node]) -> tuple[int, int]:
    """Exchange and reply messages sent by all nodes so far, and their body bytes."""
    messages = size = 0
    for r in await _all(client, nodes, "/metrics", patience=30.0):
        if r is None:
            raise RuntimeError("a node did not answer /metrics")
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                if sample.labels.get("direction") != "sent" or sample.labels.get("kind") == "rumor":
                    continue
                if sample.name == "gossip_messages_total":
                    messages += int(sample.value)
                elif sample.name == "gossip_message_bytes_total":
                    size += int(sample.value)
    return messages, size


@dataclass
class Result:
    joined_s: float
    spread_s: list[float]
    cpu: list[float]  # % of a core per node over the idle window
    bytes_per_message: float
    messages_per_node_s: float
    dead_marks: int


async def _measure(nodes: Sequence[Node], writes: int, idle_s: float) -> Result:
    limits = httpx.Limits(max_connections=2 * len(nodes))
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        joined = await _wait_joined(client, nodes, timeout=180)
        spread = [await _spread(client, nodes, nodes[(7 * i) % len(nodes)]) for i in range(writes)]
        await asyncio.sleep(3)  # the writes' exchanges settle
        before, t0 = await _traffic(client, nodes), time.monotonic()
        cpu0 = [cpu_seconds(n.proc.pid) for n in nodes]
        await asyncio.sleep(idle_s)
        cpu1, t1 = [cpu_seconds(n.proc.pid) for n in nodes], time.monotonic()
        after = await _traffic(client, nodes)
        dead = (await _members_seen(client, nodes))[1]
    sent = after[0] - before[0]
    return Result(
        joined, spread, [(b - a) / (t1 - t0) * 100 for a, b in zip(cpu0, cpu1, strict=True)],
        (after[1] - before[1]) / max(1, sent), sent / len(nodes) / (t1 - t0), dead,
    )


def _dead_events(label: str) -> int:
    """Lines where a node declared another dead, over the run's logs."""
    return sum(len(re.findall(r"member \S+ dead:", p.read_text(errors="replace")))
               for p in LOG_DIR.glob(f"multihost-{label}-*.log"))


def run(quick: bool, command: str, out_dir: Path) -> Section:
    count, per_host = (3, 4) if quick else (5, 10)
    writes, idle_s = (5, 10.0) if quick else (20, 30.0)
    if (reason := available()) is not None:
        raise RuntimeError(f"the many-hosts benchmark needs network namespaces: {reason}")
    results: dict[str, Result] = {}
    with Hosts(count) as hosts:
        for number, (label, options) in enumerate(VIEWS.items()):
            slug = f"views{number}"
            with _cluster(hosts, per_host, options, slug) as nodes:
                print(f"  {label}: {len(nodes)} nodes on {count} hosts", flush=True)
                results[label] = asyncio.run(_measure(nodes, writes, idle_s))
                r = results[label]
                print(f"  {label}: {r.bytes_per_message:,.0f} B/message, spread median "
                      f"{ms(1000 * statistics.median(r.spread_s))} ms, "
                      f"CPU {statistics.mean(r.cpu):.2f}%", flush=True)
            results[label].dead_marks = max(results[label].dead_marks, _dead_events(slug))
    return _section(results, count, per_host, writes, idle_s, command)


def _section(results: dict[str, Result], count: int, per_host: int, writes: int, idle_s: float,
             command: str) -> Section:
    section = Section(
        "6. Many hosts", command,
        f"N={count * per_host} nodes, {per_host} per host on {count} network-namespace hosts joined by one "
        f"bridge (real uvicorn processes, real HTTP, signed gossip), the default interval "
        f"({Config.gossip_interval} s) and fanout; spread = from the start of a write on one node until "
        f"every node reads it ({writes} writes, polled every {POLL * 1000:.0f} ms); CPU and bytes over "
        f"{idle_s:.0f} s without writes; bytes = bodies of exchanges and replies sent.",
        ["views", "joined in", "bytes per message", "messages/s per node", "spread median ms",
         "spread p90 ms", "spread max ms", "idle CPU % per node", "dead marks"],
    )
    for label, r in results.items():
        spread = (statistics.median(r.spread_s), percentile(r.spread_s, 90), max(r.spread_s))
        section.rows.append([
            label, f"{r.joined_s:.0f} s", f"{r.bytes_per_message:,.0f}", f"{r.messages_per_node_s:.1f}",
            *(ms(1000 * x) for x in spread),
            f"{statistics.mean(r.cpu):.2f}", str(r.dead_marks),
        ])
    marks = ", ".join(f"{r.dead_marks} ({label})" for label, r in results.items())
    section.goals.append((
        f"0 dead marks with no node failing: {marks}",
        all(r.dead_marks == 0 for r in results.values()),
    ))
    return section


if __name__ == "__main__":
    print(run("--quick" in sys.argv, " ".join(sys.argv), Path("/tmp")).markdown())
