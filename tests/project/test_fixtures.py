"""The fixtures users import for their own tests work as documented."""

from __future__ import annotations

import httpx
import pytest

from node.tools.local_cluster import LocalCluster
from node.tools.testing import InProcessCluster

pytestmark = pytest.mark.anyio


async def test_in_process_cluster_spreads_writes(gossip_cluster: InProcessCluster) -> None:
    first, last = gossip_cluster.states[0], gossip_cluster.states[-1]
    first.set("greeting", "hi", ttl=60)
    await gossip_cluster.converged()
    assert last["greeting"] == "hi"
    assert len(gossip_cluster.states) == 3
    async with gossip_cluster.http(2) as api:
        r = await api.get("/get", params={"key": "greeting"})
        assert r.status_code == 200 and r.json()["node"] == "node-0"


@pytest.mark.gossip_nodes(5)
async def test_in_process_partition_heals(gossip_cluster: InProcessCluster) -> None:
    assert len(gossip_cluster.states) == 5
    gossip_cluster.cut(4)
    gossip_cluster.states[0].set("during", 1)
    gossip_cluster.states[4].set("isolated", 2)
    await gossip_cluster.converged(among=[0, 1, 2, 3])
    assert "during" in gossip_cluster.states[3]
    assert "during" not in gossip_cluster.states[4] and "isolated" not in gossip_cluster.states[0]
    gossip_cluster.heal(4)
    await gossip_cluster.converged()
    assert gossip_cluster.states[4]["during"] == 1 and gossip_cluster.states[0]["isolated"] == 2


@pytest.mark.gossip_nodes(2)
def test_process_cluster_fixture(gossip_processes: LocalCluster) -> None:
    assert len(gossip_processes.urls) == 2
    with httpx.Client() as client:
        for url in gossip_processes.urls:
            assert client.get(url + "/health").json()["status"] == "ok"
