"""/health with real processes on real addresses: three "hosts" (network namespaces, see
netns.py), a node on each, gossip on 10.77.1.0/24 and the test's client on the admin
network. One story, sharing the processes:

1. The seed keeps the default --allow (loopback only): it refuses the others with 403, and
   they answer 503 naming the 403 and the fix; the seed, refusing them, answers 503 too.
   The seed restarted with the hosts' network allowed: every node answers 200.
2. A host cut off: its node answers 503 (isolated) once the suspicion time has passed,
   while the others, together, answer 200; after the heal, 200.
3. A node whose clock runs 60 s ahead (Debian's faketime): 503 (clock ahead), and its
   writes refused with 503; beside it, one started with --accept-writes-when-refused takes
   writes (its peers then refuse them, which it also reports). Restarted with the right
   clock: 200, and it takes writes.

Each problem is logged once at WARNING when it begins and once when it ends. Needs root,
`ip` and `faketime` (scripts/install-test-deps.sh); skipped with the reason otherwise.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.netns import Hosts, skewable_hosts, skewed_clock, start_node, stop_node
from tests.polling import wait_until

INTERVAL = 0.2  # the suspicion time is then about 2.3 s
NETWORK = "10.77.1.0/24"


@dataclass
class Fleet:
    hosts: Hosts
    logs: Path
    cluster_id: str = field(default_factory=lambda: f"health-{uuid.uuid4().hex[:6]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (host, port)

    def start(self, node_id: str, host: int, port: int, *args: str, ahead: bool = False) -> None:
        self.ports[node_id] = (host, port)
        seed = [] if node_id == "n1" else ["--seeds", f"http://{self.hosts.cluster_ip(1)}:7301"]
        node_args = [
            "--host", "0.0.0.0", "--port", str(port), "--node-id", node_id,
            "--advertise", f"http://{self.hosts.cluster_ip(host)}:{port}", "--cluster-id", self.cluster_id,
            "--interval", str(INTERVAL), *seed, *args,
        ]
        self.procs[node_id] = start_node(self.hosts.ns(host), node_args, self.logs / f"{node_id}.log",
                                         env=skewed_clock(60) if ahead else None)

    def stop(self, node_id: str) -> None:
        """SIGTERM the node's process group, then SIGKILL whatever outlives the deadline."""
        stop_node(self.procs.pop(node_id))

    def url(self, node_id: str) -> str:
        host, port = self.ports[node_id]
        return f"http://{self.hosts.admin_ip(host)}:{port}"

    def health(self, node_id: str) -> tuple[int, dict[str, Any]]:
        try:
            response = httpx.get(self.url(node_id) + "/health", timeout=2)
        except httpx.HTTPError:
            return 0, {}
        return response.status_code, response.json()

    def log(self, node_id: str) -> str:
        return (self.logs / f"{node_id}.log").read_text()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with skewable_hosts(3) as hosts:
        fleet = Fleet(hosts, tmp_path_factory.mktemp("netns-health"))
        try:
            yield fleet
        finally:
            for node_id in list(fleet.procs):
                fleet.stop(node_id)


def until(fleet: Fleet, node_id: str, status: int, *words: str, without: str = "") -> dict[str, Any]:
    """Poll node_id's /health until it answers `status` with each of `words` in its body
    (and not `without`)."""
    found: list[tuple[int, dict[str, Any]]] = []

    def check() -> bool:
        found[:] = [fleet.health(node_id)]
        code, body = found[0]
        text = str(body)
        return code == status and all(w in text for w in words) and not (without and without in text)

    wait_until(check, timeout=20, what=f"{node_id} to answer {status} with {words}", detail=lambda: found)
    return found[0][1]


def problems(body: dict[str, Any]) -> list[str]:
    return [p["problem"] for p in body.get("problems", [])]


def test_health_tells_why_a_node_is_not_in_the_cluster(fleet: Fleet) -> None:
    right = ["--allow", NETWORK]
    # 1. The seed allows loopback only (the default): it refuses the others' gossip with 403.
    fleet.start("n1", 1, 7301)
    fleet.start("n2", 2, 7302, *right)
    fleet.start("n3", 3, 7303, *right)
    for node_id in ("n2", "n3"):
        body = until(fleet, node_id, 503, "403", "--allow")
        assert problems(body) == ["not_joined"]
        assert body["problems"][0]["peers"][0]["reason"] == "NotAllowed"
        assert "add our network to their --allow" in body["problems"][0]["detail"]
    body = until(fleet, "n1", 503, "10.77.1.2", "10.77.1.3")
    assert problems(body) == ["refusing_peers"] and "add their network to our --allow" in str(body)

    fleet.stop("n1")
    fleet.start("n1", 1, 7301, *right)
    for node_id in ("n1", "n2", "n3"):
        body = until(fleet, node_id, 200, without="alone")  # (n1 is alone until the others reach it)
        assert body["status"] == "ok"
    for node_id in ("n2", "n3"):
        log = fleet.log(node_id)
        assert log.count("health: not_joined began") == 1 and "403 NotAllowed" in log
        assert log.count("health: not_joined ended") == 1

    # 2. Host 3 cut off from the others: isolated once the suspicion time has passed.
    fleet.hosts.cut(3)
    body = until(fleet, "n3", 503, "isolated")
    assert problems(body) == ["isolated"]
    assert [fleet.health(n)[0] for n in ("n1", "n2")] == [200, 200]
    fleet.hosts.heal(3)
    until(fleet, "n3", 200)
    assert fleet.log("n3").count("health: isolated began") == 1
    assert fleet.log("n3").count("health: isolated ended") == 1

    # 3. Clocks 60 s ahead: n3 restarted so, and n4 beside it, which takes writes anyway.
    fleet.stop("n3")
    fleet.start("n3", 3, 7303, *right, ahead=True)
    fleet.start("n4", 3, 7304, *right, "--accept-writes-when-refused", "on", ahead=True)
    body = until(fleet, "n3", 503, "clock_ahead")
    assert "fix this host's clock" in body["problems"][0]["detail"] and body["accepting_writes"] is False
    offsets = [p["clock_offset_seconds"] for p in body["problems"][0]["peers"] if "clock_offset_seconds" in p]
    assert offsets and all(-61 < o < -59 for o in offsets), body  # the peers' clocks, against ours
    refused = httpx.post(fleet.url("n3") + "/set", json={"key": "k", "value": 1}, timeout=5)
    assert refused.status_code == 503 and "clock" in refused.json()["detail"]
    assert httpx.post(fleet.url("n3") + "/delete", json={"key": "k"}, timeout=5).status_code == 503

    body = until(fleet, "n4", 503, "clock_ahead")
    assert body["accepting_writes"] is True
    taken = httpx.post(fleet.url("n4") + "/set", json={"key": "k4", "value": 4}, timeout=5)
    assert taken.status_code == 200
    until(fleet, "n4", 503, "ClockSkewRejected")  # its write's timestamp: peers refuse it with 400
    assert httpx.get(fleet.url("n1") + "/get", params={"key": "k4"}, timeout=5).status_code == 404
    fleet.stop("n4")

    # The clock fixed (n3 restarted without faketime): in the cluster, taking writes.
    fleet.stop("n3")
    fleet.start("n3", 3, 7303, *right)
    body = until(fleet, "n3", 200)
    assert body["accepting_writes"] is True
    assert httpx.post(fleet.url("n3") + "/set", json={"key": "k", "value": 3}, timeout=5).status_code == 200
