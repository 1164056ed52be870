"""GET /metrics: Prometheus text that prometheus_client's own parser reads, one registry per
node, figures that move with the traffic; the library loaded on the first scrape, not
before, and the schema stating the content type of the answer; and under
`uvicorn --workers N` each worker's own gossip listener serves that worker's figures (real
processes, real HTTP)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from node.tools.testing import InProcessCluster, UvicornWorkers
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
LAG = "gossip_replication_lag_seconds_count"
SENT = {"kind": "exchange", "direction": "sent"}
MESSAGES, APPLIED = "gossip_messages_total", "gossip_entries_applied_total"


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


async def scrape(cluster: InProcessCluster, i: int) -> list[Sample]:
    async with cluster.http(i) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@pytest.mark.anyio
async def test_metrics_count_each_replicated_write_and_move_with_the_traffic() -> None:
    writes = 25
    async with InProcessCluster(3) as cluster:
        await cluster.converged()
        before = [await scrape(cluster, i) for i in range(3)]
        for found, name in zip(before, cluster.names, strict=True):
            assert value(found, "gossip_node_info", node=name) == 1  # a registry per node
        async with cluster.http(0) as client:
            for i in range(writes):
                (await client.post("/set", json={"key": f"k{i}", "value": i})).raise_for_status()
            await cluster.converged()
            written = [await scrape(cluster, i) for i in range(3)]
            (await client.post("/delete", json={"key": "k0"})).raise_for_status()
        await cluster.converged()
        with anyio.fail_after(10):  # each node gossips some more
            for i, then in enumerate(written):
                while value(await scrape(cluster, i), MESSAGES, **SENT) == value(then, MESSAGES, **SENT):
                    await anyio.sleep(0.02)
        after = [await scrape(cluster, i) for i in range(3)]

    # Node 0 wrote: its own writes are no replication. Each other node applied each write once.
    assert value(after[0], LAG) == value(before[0], LAG)
    for b, w, a in zip(before[1:], written[1:], after[1:], strict=True):
        assert value(w, LAG) - value(b, LAG) == writes
        assert value(a, LAG) - value(w, LAG) == 1  # the delete
        assert value(a, "gossip_replication_lag_seconds_bucket", le="+Inf") == value(a, LAG)
        assert value(a, "gossip_replication_lag_seconds_sum") >= 0
        assert value(a, APPLIED) - value(b, APPLIED) == writes + 1
        assert (value(a, "gossip_keys"), value(a, "gossip_tombstones")) == (writes - 1, 1)
        assert value(a, "gossip_members", status="alive") + value(a, "gossip_members", status="suspect") == 2
        # What node 0 pushed arrived here, in messages and bytes.
        for name in ("gossip_messages_total", "gossip_message_bytes_total"):
            assert value(a, name, direction="received") > value(b, name, direction="received")
    for b, a in zip(before, after, strict=True):
        assert value(a, "gossip_rounds_total") > value(b, "gossip_rounds_total")
        assert value(a, "gossip_message_bytes_total", **SENT) > value(b, "gossip_message_bytes_total", **SENT)
        assert (value(a, "gossip_healthy"), value(a, "gossip_accepting_writes")) == (1, 1)
    # Clock offsets, estimated from each peer's answers (one process, one clock: small). With
    # negative buckets, the histogram has no _count or _sum (OpenMetrics): +Inf counts them all.
    offsets = "gossip_clock_offset_seconds_bucket"
    peers = {s.labels["peer"] for s in after[0] if s.name == offsets}
    assert peers == {"http://node-1", "http://node-2"}
    for peer in peers:
        assert value(after[0], offsets, peer=peer, le="+Inf") > 0
        assert abs(value(after[0], "gossip_clock_offset_last_seconds", peer=peer)) < 1.0
    for a in after:  # the clock check: each node a host of its own, all on this machine's clock
        [ahead] = [s.value for s in a if s.name == "gossip_clock_ahead_seconds"]
        assert abs(ahead) < 1.0 and 0 <= value(a, "gossip_hlc_lead_seconds") < 1.0


def test_each_worker_serves_its_own_metrics_on_its_gossip_listener() -> None:
    app = "examples.pid_app:app"
    with UvicornWorkers(app, workers=2, cwd=ROOT) as workers, httpx.Client(timeout=5) as http:
        listeners = workers.workers()

        def scrape_all() -> dict[int, list[Sample]]:
            return {pid: samples(http.get(address + "/metrics").text) for pid, address in listeners.items()}

        def lags(scraped: dict[int, list[Sample]]) -> float:
            return sum(value(found, LAG) for found in scraped.values())

        before = scrape_all()
        ids = {s.labels["node"] for found in before.values() for s in found if s.name == "gossip_node_info"}
        assert len(ids) == 2, "each listener answers for its own worker"
        http.post(workers.url + "/set", params={"value": "v"}).raise_for_status()  # taken by one worker
        wait_until(lambda: lags(scrape_all()) == lags(before) + 1, timeout=10,
                   what="the other worker to count the write in its lag histogram")
        time.sleep(0.3)  # a few more rounds (interval 0.1 s): nothing else is counted
        after = scrape_all()
        assert lags(after) == lags(before) + 1
        for pid, found in after.items():
            assert value(found, "gossip_members", status="alive") == 1
            assert value(found, MESSAGES, **SENT) > value(before[pid], MESSAGES, **SENT)


def test_the_library_loads_on_the_first_scrape_and_the_schema_names_its_content_type() -> None:
    """A node nobody scrapes carries no prometheus_client (a fresh interpreter: this one has
    it already); its OpenAPI schema states the content type a scrape answers with."""
    probe = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from node.server.settings import Settings\n"
        "from node.web.app import create_app\n"
        "with TestClient(create_app(Settings(node_id='n', discovery_dir='off'))) as client:\n"
        "    client.get('/get', params={'key': 'k'})\n"
        "    assert 'prometheus_client' not in sys.modules, 'loaded before a scrape'\n"
        "    answer = client.get('/metrics')\n"
        "    assert answer.status_code == 200 and 'prometheus_client' in sys.modules\n"
        "    from prometheus_client import CONTENT_TYPE_LATEST\n"
        "    assert answer.headers['content-type'] == CONTENT_TYPE_LATEST, answer.headers\n"
        "    operation = client.get('/openapi.json').json()['paths']['/metrics']['get']\n"
        "    assert list(operation['responses']['200']['content']) == [CONTENT_TYPE_LATEST], operation\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
