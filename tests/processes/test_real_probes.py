"""Direct probes (R23) between real uvicorn processes: a node killed with SIGKILL is seen
dead by the others within seconds (phi alone would take about 18 gossip intervals), and a
node stopped for less than the suspicion timeout is not marked dead by anyone."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from node.tools.local_cluster import LocalCluster

GOSSIP_INTERVAL = 1.0  # phi declares a silent member dead after about 18 s of this
PROBE_INTERVAL = 0.5  # 4 nodes: a suspicion runs out after 0.5 to 1.5 s (R23)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    args = ["--probe-interval", str(PROBE_INTERVAL)]
    with LocalCluster(nodes=4, interval=GOSSIP_INTERVAL, extra_args=args) as c:
        yield c


def view_of(client: httpx.Client, cluster: LocalCluster, observer: str, member: str) -> dict[str, Any]:
    members = client.get(cluster.url(observer) + "/members").json()["members"]
    return next(m for m in members if m["id"] == member)


# R23, R24: a node killed with SIGKILL is marked dead by the probes within seconds, long
# before phi would (its phi stays under phi_dead).
def test_a_killed_node_is_seen_dead_within_seconds(cluster: LocalCluster) -> None:
    cluster.wait_members(timeout=30)
    victim, observers = "n3", ["n1", "n2", "n4"]
    with httpx.Client(timeout=5) as client:
        assert all(view_of(client, cluster, o, victim)["probe_verdict"] == "alive" for o in observers)
        cluster.kill(victim)
        killed = time.monotonic()
        waiting = set(observers)
        while waiting:
            assert time.monotonic() - killed < 8.0, f"{sorted(waiting)} still do not see {victim} dead"
            for observer in list(waiting):
                if view_of(client, cluster, observer, victim)["status"] == "dead":
                    waiting.discard(observer)
            time.sleep(0.05)
        seen = time.monotonic() - killed
        view = view_of(client, cluster, "n1", victim)
        assert view["probe_verdict"] == "dead"
        assert view["phi"] < 8.0  # the probes saw it, not phi
        assert seen < 8.0


# R23: a stop shorter than the suspicion timeout is not taken for death, by the others or
# by the node stopped.
def test_a_short_stop_is_not_taken_for_death(cluster: LocalCluster) -> None:
    cluster.wait_members(timeout=30)
    sleeper, observers = "n2", ["n1", "n3", "n4"]
    with httpx.Client(timeout=5) as client:
        cluster.kill(sleeper, signal.SIGSTOP)
        try:
            time.sleep(0.4)  # the stop itself (under the shortest suspicion timeout, 0.5 s)
        finally:
            cluster.kill(sleeper, signal.SIGCONT)
        # Watch for a while: any dead mark would show (it lasts until refuted, over a probe round trip).
        watch_until = time.monotonic() + 4 * PROBE_INTERVAL * 3
        while time.monotonic() < watch_until:
            for observer in observers:
                assert view_of(client, cluster, observer, sleeper)["status"] != "dead"
            time.sleep(0.05)
        # And the node itself saw nobody dead meanwhile.
        members = client.get(cluster.url(sleeper) + "/members").json()["members"]
        assert all(m["status"] in ("alive", "suspect") for m in members)
