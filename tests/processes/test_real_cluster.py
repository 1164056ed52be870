"""Real uvicorn processes started by the launcher, speaking real HTTP on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from node.tools.local_cluster import LocalCluster
from tests.polling import await_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(nodes=5, interval=0.1) as c:
        yield c


async def digests(client: httpx.AsyncClient, urls: list[str]) -> list[str]:
    return [(await client.get(u + "/digest")).json()["digest"] for u in urls]


async def test_every_node_learns_every_member_from_one_seed(cluster: LocalCluster) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for url in cluster.urls:
            members = (await client.get(url + "/members")).json()["members"]
            assert sorted(m["id"] for m in members) == sorted(cluster.ids)
            assert {m["address"] for m in members} == set(cluster.urls)
            assert all(m["status"] == "alive" for m in members)


async def test_writes_to_random_nodes_converge_to_lww(cluster: LocalCluster) -> None:
    rng = random.Random(7)
    written: list[dict[str, object]] = []
    async with httpx.AsyncClient(timeout=5) as client:

        async def write(key: str, value: str) -> None:
            url = rng.choice(cluster.urls)
            r = await client.post(url + "/set", json={"key": key, "value": value})
            assert r.status_code == 200, r.text
            written.append(r.json())

        for i in range(200):  # unique values, unique keys
            await write(f"unique-{i}", f"value-{i}")
        async with anyio.create_task_group() as tg:  # concurrent writes to the same keys
            for i in range(100):
                tg.start_soon(write, f"contended-{i % 5}", f"c-{i}")

        expected: dict[str, dict[str, object]] = {}
        for entry in written:
            best = expected.get(entry["key"])  # type: ignore[arg-type]
            if best is None or (entry["timestamp"], entry["node"]) > (best["timestamp"], best["node"]):
                expected[entry["key"]] = entry  # type: ignore[index]

        async def agreed() -> bool:
            return len(set(await digests(client, cluster.urls))) == 1

        await await_until(agreed, what="every node to report the same /digest")
        for url in cluster.urls:
            values = (await client.get(url + "/get")).json()["values"]
            for key, entry in expected.items():
                assert values[key] == entry["value"], f"{url} has {key}={values.get(key)!r}"
            one = (await client.get(url + "/get", params={"key": "contended-0"})).json()
            best = expected["contended-0"]
            assert (one["timestamp"], one["node"]) == (best["timestamp"], best["node"])


async def test_delete_on_one_node_reads_404_everywhere(cluster: LocalCluster) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        await client.post(cluster.urls[1] + "/set", json={"key": "doomed", "value": 1})

        async def everywhere(status: int) -> bool:
            answers = [await client.get(u + "/get", params={"key": "doomed"}) for u in cluster.urls]
            return all(r.status_code == status for r in answers)

        await await_until(lambda: everywhere(200), what="the write to reach every node")
        r = await client.post(cluster.urls[3] + "/delete", json={"key": "doomed"})
        assert r.status_code == 200
        await await_until(lambda: everywhere(404), what="the delete to reach every node")


async def test_a_websocket_library_is_loaded_by_the_first_upgrade_request(cluster: LocalCluster) -> None:
    """The standalone node hands uvicorn a stand-in for its WebSocket protocol
    (node.web.lazy_websockets): no WebSocket library in the process until an upgrade request
    comes, which is then turned down as uvicorn's own choice does (no WebSocket route: 403)."""
    pid, port = cluster.pids[-1], cluster.ports[-1]

    def loaded() -> bool:  # (its compiled speedups are mapped once `websockets` is imported)
        return "/websockets/" in Path(f"/proc/{pid}/maps").read_text()

    assert not loaded()
    request = (b"GET /ws HTTP/1.1\r\nHost: node\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    answer = b""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request)
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive()
    assert answer.startswith(b"HTTP/1.1 403 "), answer
    assert loaded()


async def test_eager_push_off_still_converges() -> None:
    with LocalCluster(nodes=3, interval=0.1, eager_push=False) as c:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(c.urls[2] + "/set", json={"key": "slow", "value": "by rounds"})

            async def everywhere() -> bool:
                rs = [await client.get(u + "/get", params={"key": "slow"}) for u in c.urls]
                return all(r.status_code == 200 for r in rs)

            await await_until(everywhere, what="anti-entropy rounds to spread the write")
            stats = (await client.get(c.urls[0] + "/stats")).json()
            assert stats["rumors_received"] == 0
