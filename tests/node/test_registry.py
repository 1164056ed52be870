"""The service registry (node/recipes/registry.py): an instance appears on every node, and goes
when its node leaves (within a gossip round: the deletes go straight to the peers before
the goodbye), when its node is killed (once found dead, long before its TTL), or when it
is withdrawn. Bad registrations are refused naming the problem, and change nothing.

The real-process test runs in `make test-recipes-long` (uvicorn workers take a while to start)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from gossip.errors import CallerError
from node.recipes.registry import Instance
from node.server.discovery import process_alive
from node.tools.testing import InProcessCluster, UvicornWorkers
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]

# -- in process -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_instances_spread_and_go_when_withdrawn_or_their_node_is_cut_off() -> None:
    async with InProcessCluster(3) as cluster:
        await cluster.converged()
        s0, s1, s2 = cluster.states
        s1.register("api", "http://10.0.0.1:8000", meta={"zone": "a"}, ttl=60)
        s2.register("api", "http://10.0.0.2:8000", ttl=60)
        s2.register("db", "http://10.0.0.2:5432", ttl=60)
        with anyio.fail_after(10):
            while any(len(s.instances("api")) < 2 for s in cluster.states):
                await anyio.sleep(0.02)
        assert s0.instances("api") == [Instance("api", "node-1", "http://10.0.0.1:8000", {"zone": "a"}),
                                       Instance("api", "node-2", "http://10.0.0.2:8000")]
        assert [i.node for i in s0.instances("db")] == ["node-2"]
        assert s0.instances("nothing") == []
        assert "_gossip/service/api/node-1" not in s0.snapshot()  # the registry's keys are internal

        s1.register("api", "http://10.0.0.9:8000", ttl=60)  # re-registering replaces
        s2.unregister("api")
        with anyio.fail_after(10):  # (on every node: a push may reach node-1 last, relayed)
            while any([i.url for i in s.instances("api")] != ["http://10.0.0.9:8000"]
                      for s in cluster.states):
                await anyio.sleep(0.02)

        cluster.cut(1)  # node-1 found dead by the others: its instance is left out
        with anyio.fail_after(10):
            while s0.instances("api") or s2.instances("api"):
                await anyio.sleep(0.02)
        assert [i.node for i in s1.instances("api")] == ["node-1"]  # its own view still has it
        async with cluster.http(0) as client:
            answer = (await client.get("/services/db")).json()
        assert answer == {"service": "db", "instances": [
            {"node": "node-2", "url": "http://10.0.0.2:5432", "meta": None}]}


@pytest.mark.anyio
async def test_an_instance_lapses_with_its_ttl_when_not_renewed() -> None:
    async with InProcessCluster(1) as cluster:
        state = cluster.states[0]
        state.register("api", "http://a", ttl=0.3)
        state._recipes.registry._mine.clear()  # as if the node had stopped renewing it
        assert len(state.instances("api")) == 1
        with anyio.fail_after(5):
            while state.instances("api"):
                await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_bad_registrations_are_refused_and_change_nothing() -> None:
    async with InProcessCluster(1) as cluster:
        state = cluster.states[0]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"service": ""}, "service name must be a non-empty string"),
            ({"service": "a/b"}, "without '/'"),
            ({"url": ""}, "url must be a non-empty string"),
            ({"ttl": 0}, "ttl must be a positive number"),
            ({"ttl": -5}, "ttl must be a positive number"),
            ({"ttl": float("inf")}, "ttl must be a positive number"),
            ({"ttl": True}, "ttl must be a positive number"),
            ({"meta": {"x": float("nan")}}, "finite"),
            ({"service": "s" * 300}, "bytes"),
        ]
        for change, says in cases:
            arguments: dict[str, Any] = {"service": "api", "url": "http://a", "ttl": 30, **change}
            with pytest.raises(CallerError, match=says):
                state.register(**arguments)
        with pytest.raises(CallerError, match="service name"):
            state.instances("")
        assert state.instances("api") == [] and not state._recipes.registry._mine
        assert not [k for k in state.protocol.store.live(2**52) if k.startswith("_gossip/service/")]
        async with cluster.http(0) as client:
            assert (await client.get("/services/%20")).status_code == 200  # a name, just odd


# -- real processes ---------------------------------------------------------------------------

INTERVAL = 0.25  # seconds between rounds: "within a round" below means within this
ENV = {"GOSSIP_INTERVAL": str(INTERVAL), "GOSSIP_PHI_DEAD": "4", "GOSSIP_PHI_SUSPECT": "3",
       "REGISTRY_TTL": "60", "GOSSIP_TAGS": "zone=a,role=api"}
DETECTION = 4 / 0.434 * INTERVAL  # phi_dead / log10(e) intervals of silence (docs/PROTOCOL.md R17)


def _instances(client: httpx.Client, address: str) -> set[int]:
    """The pids (meta) of the instances of "api" the worker at `address` lists."""
    answer = client.get(address + "/services/api").raise_for_status().json()
    return {i["meta"]["pid"] for i in answer["instances"]}


def test_instances_appear_everywhere_and_go_on_leave_and_on_kill() -> None:
    with UvicornWorkers("examples.registry_app:app", workers=3, env=ENV, cwd=ROOT) as workers, \
            httpx.Client(timeout=5) as client:
        running = workers.workers()
        everyone = set(running)
        wait_until(lambda: all(_instances(client, a) == everyone for a in running.values()), timeout=10,
                   what="every instance on every worker")
        members = client.get(next(iter(running.values())) + "/members").json()["members"]
        assert all(m["tags"] == {"role": "api", "zone": "a"} for m in members)

        # a clean leave: its instance is gone from the others within a round of its exit
        leaver, *others = sorted(running)
        os.kill(leaver, signal.SIGTERM)
        wait_until(lambda: not process_alive(leaver), timeout=10, what="the worker to exit")
        wait_until(lambda: all(leaver not in _instances(client, running[p]) for p in others),
                   timeout=INTERVAL, what="the instance to go within a round of the leave")

        # kill -9: its instance is gone once the others find it dead (the TTL is 60 s)
        victim, survivor = others
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in _instances(client, running[survivor]), timeout=3 * DETECTION,
                   what="the instance to go once its worker is found dead")
        members = client.get(running[survivor] + "/members").json()["members"]
        assert {m["address"]: m["status"] for m in members}[running[victim]] == "dead"
