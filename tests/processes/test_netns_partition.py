"""A real partition: four uvicorn nodes on two "hosts" (network namespaces, see
netns.py), the link between the hosts cut while both sides take writes, then restored.
Each side keeps serving and agreeing within itself, each marks the other dead, and after
the heal every node converges to the last-writer-wins state: no acknowledged write is lost
except to a later write of the same key."""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.netns import Hosts, available, start_node
from tests.polling import wait_until

INTERVAL = 0.2


@dataclass(frozen=True)
class Node:
    id: str
    host: int
    port: int
    admin_url: str  # where the test talks to it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hosts, list[Node]]]:
    if (reason := available()) is not None:
        pytest.skip(reason)
    logs = tmp_path_factory.mktemp("netns-logs")
    env = {"GOSSIP_KEY": secrets.token_hex(32)}
    with Hosts() as hosts:
        nodes = [Node(f"n{i}", 1 if i <= 2 else 2, 7200 + i, "") for i in range(1, 5)]
        nodes = [Node(n.id, n.host, n.port, f"http://{hosts.admin_ip(n.host)}:{n.port}") for n in nodes]
        seed = f"http://{hosts.cluster_ip(1)}:{nodes[0].port}"
        procs = []
        try:
            for n in nodes:
                args = [
                    "--host", "0.0.0.0", "--port", str(n.port), "--node-id", n.id,
                    "--advertise", f"http://{hosts.cluster_ip(n.host)}:{n.port}",
                    "--allow", "10.77.1.0/24", "--cluster-id", f"netns-{hosts.tag}",
                    "--interval", str(INTERVAL), *(["--seeds", seed] if n.id != "n1" else []),
                ]
                procs.append(start_node(hosts.ns(n.host), args, logs / f"{n.id}.log", env))
            wait_until(lambda: all(statuses(n) == {m.id: "alive" for m in nodes} for n in nodes),
                       timeout=30, what="every node to see four live members")
            # A node takes writes once it has compared its clock with a node on another
            # host; one that has not by the cut would refuse them all along (as it should).
            wait_until(lambda: all(takes_writes(n) for n in nodes), timeout=30,
                       what="every node to take writes (its clock compared with the other host's)")
            yield hosts, nodes
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def get(node: Node, path: str, **params: str) -> Any:
    try:
        response = httpx.get(node.admin_url + path, params=params, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def takes_writes(node: Node) -> bool:
    try:
        body = {"key": f"ready-{node.id}", "value": 1}
        response = httpx.post(node.admin_url + "/set", json=body, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def statuses(node: Node) -> dict[str, str]:
    body = get(node, "/members")
    return {m["id"]: m["status"] for m in body["members"]} if body else {}


def digest(node: Node) -> str | None:
    body = get(node, "/digest")
    return body["digest"] if body else None


def agree(nodes: list[Node]) -> bool:
    found = {digest(n) for n in nodes}
    return len(found) == 1 and None not in found


def test_a_partition_with_writes_on_both_sides_heals_without_losing_acknowledged_writes(
    cluster: tuple[Hosts, list[Node]],
) -> None:
    hosts, nodes = cluster
    left, right = nodes[:2], nodes[2:]
    rng = random.Random(5)
    acks: list[dict[str, Any]] = []

    def write(side: list[Node], key: str, value: str) -> None:
        url = rng.choice(side).admin_url
        response = httpx.post(url + "/set", json={"key": key, "value": value}, timeout=5)
        assert response.status_code == 200, response.text
        acks.append(response.json())

    hosts.cut(2)
    for i in range(30):
        write(left, f"left-{i}", f"L{i}")
        write(right, f"right-{i}", f"R{i}")
        write(left if i % 2 else right, f"both-{i % 10}", f"B{i}")  # each key written on both sides

    # Each side agrees within itself and sees none of the other side's writes.
    wait_until(lambda: agree(left) and agree(right), timeout=20, what="each side to agree within itself")
    assert digest(left[0]) != digest(right[0])
    assert get(left[0], "/get", key="right-0") is None
    assert get(right[0], "/get", key="left-0") is None
    wait_until(lambda: all(statuses(n)[m.id] == "dead" for n in left for m in right)
               and all(statuses(n)[m.id] == "dead" for n in right for m in left),
               timeout=20, what="each side to mark the other dead")

    hosts.heal(2)
    took = wait_until(lambda: agree(nodes), timeout=60, what="all four nodes to agree after the heal")
    print(f"\nconverged {took:.2f} s after the heal")

    winners: dict[str, dict[str, Any]] = {}
    for ack in acks:
        best = winners.get(ack["key"])
        if best is None or (ack["timestamp"], ack["node"]) > (best["timestamp"], best["node"]):
            winners[ack["key"]] = ack
    for node in nodes:
        held = get(node, "/get")["values"]
        lost = {k: w["value"] for k, w in winners.items() if held.get(k) != w["value"]}
        assert not lost, f"{node.id} lost acknowledged writes: {lost}"
    wait_until(lambda: all(set(statuses(n).values()) == {"alive"} for n in nodes),
               timeout=30, what="every node to be alive everywhere again")
