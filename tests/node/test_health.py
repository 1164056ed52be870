"""/health tells the truth (in-process nodes: fast and deterministic; the same states with
real processes on real addresses are in test_netns_health.py): 200 in the cluster or alone
by design, 503 naming the problem and the fix otherwise, each problem logged once when it
begins and once when it ends; membership changes logged one line each."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import httpx
import pytest

from gossip.config import Config
from gossip.errors import WritesRefused
from node.monitoring.health import answer
from node.server.settings import Settings
from node.state import SharedState, wall_ms
from node.tools.testing import InProcessCluster
from node.web.app import create_app
from tests.inprocess import serving


async def health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health")
    return response.status_code, response.json()


async def until(client: httpx.AsyncClient, status: int, text: str = "") -> dict[str, Any]:
    """Poll /health until it answers `status` (with `text` in the body); the body."""
    with anyio.fail_after(10):
        while True:
            code, body = await health(client)
            if code == status and text in str(body):
                return body
            await anyio.sleep(0.02)


def problems(body: dict[str, Any]) -> list[str]:
    return [p["problem"] for p in body.get("problems", [])]


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


@pytest.mark.anyio
async def test_alone_by_design_is_healthy_and_says_so() -> None:
    app = create_app(Settings(node_id="solo", discovery_dir="off", config=Config.for_tests()))
    async with serving(app) as client:
        code, body = await health(client)
        assert code == 200
        assert body["status"] == "ok" and "one-node cluster" in body["alone"] and body["version"]


@pytest.mark.anyio
async def test_isolated_then_healthy_after_the_heal_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gossip.members")
    async with InProcessCluster(3) as cluster:
        clients = [cluster.http(i) for i in range(3)]
        await cluster.converged()
        for client in clients:  # (node 0 is alone until the others join it)
            with anyio.fail_after(10):
                while "alone" in (body := (await until(client, 200))):
                    await anyio.sleep(0.02)
            assert "problems" not in body
        cluster.cut(2)  # (the test's own client cannot reach it either: ask its state)
        isolated = cluster.states[2]
        with anyio.fail_after(10):
            while isolated.health.update().ok:
                await anyio.sleep(0.02)
        body = answer(isolated, isolated.health.update())
        assert problems(body) == ["isolated"] and "check this host's network" in body["problems"][0]["detail"]
        assert [(await health(c))[0] for c in clients[:2]] == [200, 200]  # they have each other
        with anyio.fail_after(10):  # the others find it dead
            while "dead" not in {m["status"] for m in (await clients[0].get("/members")).json()["members"]}:
                await anyio.sleep(0.02)
        cluster.heal(2)
        await until(clients[2], 200)
        with anyio.fail_after(10):
            while any(m["status"] != "alive" for m in (await clients[0].get("/members")).json()["members"]):
                await anyio.sleep(0.02)
        with anyio.fail_after(10):  # (the node logs membership events on its next round)
            while not any(m.startswith("node-0: member node-2 alive_again")
                          for m in messages(caplog, "gossip.members")):
                await anyio.sleep(0.02)
        for client in clients:
            await client.aclose()
    logged = messages(caplog, "gossip.health")
    assert [m for m in logged if "node-2: health: isolated began" in m] != []
    assert len([m for m in logged if "node-2: health: isolated began" in m]) == 1
    assert len([m for m in logged if "node-2: health: isolated ended" in m]) == 1
    members = [m for m in messages(caplog, "gossip.members") if m.startswith("node-0: member node-2 ")]
    kinds = [m.split()[3].rstrip(":") for m in members]
    assert kinds[:4] == ["joined", "suspect", "dead", "alive_again"], members  # (then "left", on the way out)
    assert any("phi" in m and "without news" in m for m in members if " dead:" in m)


@pytest.mark.anyio
async def test_an_unreachable_seed_is_named() -> None:
    seed = "http://127.0.0.1:9"  # (discard: nothing listens)
    config = Config.for_tests(request_timeout=0.5)
    app = create_app(Settings(node_id="lonely", seeds=(seed,), discovery_dir="off", config=config))
    async with serving(app) as client:
        body = await until(client, 503, "no seed reachable")
        assert problems(body) == ["not_joined"]
        assert body["problems"][0]["peers"][0]["peer"] == seed
        metrics = (await client.get("/metrics")).text
        assert f'gossip_exchange_failures_total{{peer="{seed}",reason="unreachable"}}' in metrics


class _WrongAllow(InProcessCluster):
    """Node 0, the seed, allows gossip only from a network its peers are not on."""

    def settings(self, i: int) -> Settings:
        settings = super().settings(i)
        return settings.replace(allow=("10.99.0.0/16",)) if i == 0 else settings


@pytest.mark.anyio
async def test_peers_that_refuse_us_with_403_are_named_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    async with _WrongAllow(2) as cluster:
        joiner, seed = cluster.http(1), cluster.http(0)
        body = await until(joiner, 503, "403")
        assert problems(body) == ["not_joined"]
        assert "403" in body["problems"][0]["detail"] and "--allow" in body["problems"][0]["detail"]
        assert body["problems"][0]["peers"][0]["reason"] == "NotAllowed"
        # The seed, alone but refusing a peer, is not alone by design.
        body = await until(seed, 503)
        assert problems(body) == ["refusing_peers"] and "--allow" in body["problems"][0]["detail"]
        await joiner.aclose()
        await seed.aclose()
    assert len([m for m in messages(caplog, "gossip.health") if "node-1: health: not_joined began" in m]) == 1


def answered(state: SharedState, peer: str, behind: float) -> None:
    """What the transport tells the clock check when `peer` answers our request at once,
    its clock `behind` seconds behind ours."""
    now = time.monotonic()
    state.clockcheck.observe(peer, wall_ms() - round(behind * 1000), received=now, sent=now - 0.001)


@pytest.mark.anyio
@pytest.mark.parametrize("accept", [False, True])
async def test_a_node_whose_clock_runs_ahead_of_the_clusters_refuses_writes_unless_told_not_to(
    accept: bool,
) -> None:
    settings = Settings(node_id="ahead", advertise="http://ahead.test", discovery_dir="off",
                        config=Config.for_tests(), accept_writes_when_refused=accept)
    app = create_app(settings)
    async with serving(app) as client:
        state = app.state.shared_state
        (await client.post("/set", json={"key": "before", "value": 1})).raise_for_status()  # alone: taken
        # A node on another host answers: its clock reads 60 s behind ours (see node/server/clockcheck.py).
        peer = "http://peer.test:7946"
        answered(state, peer, 60)
        code, body = await health(client)
        assert (code, problems(body)) == (503, ["clock_ahead"])
        detail = body["problems"][0]["detail"]
        assert "fix this host's clock" in detail and "60.0" in detail and "max_offset (5 s)" in detail, detail
        [named] = body["problems"][0]["peers"]
        assert named["peer"] == peer and -60.01 < named["clock_offset_seconds"] < -59.99, named
        assert body["accepting_writes"] is accept
        set_answer = await client.post("/set", json={"key": "k", "value": 1})
        delete_answer = await client.post("/delete", json={"key": "before"})
        if accept:
            assert (set_answer.status_code, delete_answer.status_code) == (200, 200)
        else:
            assert (set_answer.status_code, delete_answer.status_code) == (503, 503)
            assert "--accept-writes-when-refused" in set_answer.json()["detail"]
            assert "60.0" in set_answer.json()["detail"] and "max_offset" in set_answer.json()["detail"]
            with pytest.raises(WritesRefused):
                state.set("k", 2)
            with pytest.raises(WritesRefused):
                state.incr("hits")
            with pytest.raises(WritesRefused):
                state.incr_window("hits", 60)
            assert state.get("k") is None and state.get("before") == 1  # nothing changed
            assert state.count("hits") == 0
        answered(state, peer, 0)  # the clock is fixed: the peer's answers match it again
        code, body = await health(client)
        assert (code, body["accepting_writes"]) == (200, True)
        (await client.post("/set", json={"key": "k", "value": 3})).raise_for_status()


@pytest.mark.anyio
async def test_a_node_that_has_not_compared_its_clock_with_another_host_takes_no_write() -> None:
    """Its seed is on another host and does not answer: a write waits for the first
    comparison (an interval and a request's timeout), then gets 503 saying why."""
    config = Config.for_tests(request_timeout=0.3)
    settings = Settings(node_id="new", advertise="http://new.test", seeds=("http://127.0.0.1:9",),
                        discovery_dir="off", config=config)
    app = create_app(settings)
    async with serving(app) as client:
        started = time.monotonic()
        refused = await client.post("/set", json={"key": "k", "value": 1})
        waited = time.monotonic() - started
        assert refused.status_code == 503 and "not compared its clock" in refused.json()["detail"]
        assert config.gossip_interval + config.request_timeout - 0.05 < waited < 5, waited
        body = await until(client, 503, "no seed reachable")
        assert problems(body) == ["not_joined"] and body["accepting_writes"] is False
        state = app.state.shared_state
        with pytest.raises(WritesRefused, match="not compared its clock"):
            state.set("k", 2)
        answered(state, "http://127.0.0.1:9", 0)  # the seed answers, its clock agreeing with ours
        (await client.post("/set", json={"key": "k", "value": 3})).raise_for_status()
