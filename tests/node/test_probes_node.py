"""The node's side of direct probes (R23): POST /probe, and /members showing them."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

from gossip.config import Config
from node.tools.testing import InProcessCluster

pytestmark = pytest.mark.anyio


def _config(probe_interval: float) -> Config:
    return Config.for_tests(cluster_id=f"test-{uuid.uuid4().hex[:8]}", probe_interval=probe_interval,
                            probe_timeout=0.4 * probe_interval if probe_interval else 0.5)  # fmt: skip


# R23: nodes probe each other over POST /probe, every probe answered, and /members shows
# the probes' verdict and incarnations; bad probe messages are refused with a 400.
async def test_nodes_probe_each_other_and_show_it() -> None:
    async with InProcessCluster(3, _config(0.1)) as cluster, cluster.http(0) as client:
        deadline = time.monotonic() + 10
        while True:  # every probe answered at least once: no suspicion, health back to 0
            stats = [s.protocol.probes for s in cluster.states]
            if all(p is not None and p.counters.probes >= 4 for p in stats):
                break
            assert time.monotonic() < deadline, "the nodes do not probe"
            await anyio.sleep(0.05)
        members = (await client.get("/members")).json()["members"]
        me = next(m for m in members if m["self"])
        assert me["incarnation"] == 0 and "local_health" in me
        others = [m for m in members if not m["self"]]
        assert len(others) == 2 and all(m["probe_verdict"] == "alive" for m in others)
        assert all(p is not None and p.counters.failed == 0 for p in stats)
        metrics = (await client.get("/metrics")).text
        assert 'gossip_probe_events_total{event="probes"}' in metrics
        assert 'gossip_probe_events_total{event="failed"} 0.0' in metrics
        assert (await client.post("/probe", content=b"garbage")).status_code == 400
        wrong = {"v": 3, "cluster": cluster.config.cluster_id, "type": "probe", "kind": "pong"}
        assert (await client.post("/probe", json=wrong)).status_code == 400


# R23: a node with probes off answers no probes (404).
async def test_a_node_that_does_not_probe_refuses_probes() -> None:
    async with InProcessCluster(1, _config(0.0)) as cluster, cluster.http(0) as client:
        answer = await client.post("/probe", content=b"{}")
        assert answer.status_code == 404 and "does not probe" in answer.text
        assert "gossip_probe_events" not in (await client.get("/metrics")).text
