"""A burst of writes through every node of a 10-node cluster of real processes: pushes
are batched and coalesced under load (docs/PROTOCOL.md, R21), and every node must end
with every acknowledged key, and, for keys written again and again, the newest value."""

from __future__ import annotations

import anyio
import httpx

from node.cluster import LocalCluster
from tests.polling import wait_until

NODES = 10
PER_NODE = 120  # writes through each node, 8 at a time
HOT_KEYS = 5  # keys every node writes again and again (coalesced in pushes)


def test_a_write_burst_through_every_node_reaches_every_node() -> None:
    acked: dict[str, tuple[object, tuple[int, int], str]] = {}

    with LocalCluster(NODES, interval=0.2) as cluster:

        async def burst() -> None:
            limits = httpx.Limits(max_connections=8 * NODES)
            async with httpx.AsyncClient(timeout=10, limits=limits) as client:

                async def writer(node: int, lane: int) -> None:
                    url = cluster.urls[node]
                    for i in range(lane, PER_NODE, 8):
                        key = f"hot-{i % HOT_KEYS}" if i % 3 == 0 else f"n{node}-{i}"
                        r = await client.post(url + "/set", json={"key": key, "value": [node, i]})
                        r.raise_for_status()
                        body = r.json()
                        entry = (body["value"], tuple(body["timestamp"]), body["node"])
                        if key not in acked or entry[1:] > acked[key][1:]:
                            acked[key] = entry  # the last-writer-wins winner so far

                async with anyio.create_task_group() as tg:
                    for node in range(NODES):
                        for lane in range(8):
                            tg.start_soon(writer, node, lane)

        anyio.run(burst)
        with httpx.Client(timeout=10) as client:

            def everywhere() -> bool:
                for url in cluster.urls:
                    values = client.get(url + "/get").json()["values"]
                    if len(values) != len(acked):
                        return False
                return len({client.get(u + "/digest").json()["digest"] for u in cluster.urls}) == 1

            wait_until(everywhere, timeout=60, what="every node to hold every acknowledged key")
            expected = {key: value for key, (value, _, _) in acked.items()}  # values are unique
            for url in cluster.urls:
                assert client.get(url + "/get").json()["values"] == expected, url
            pushes = sum(client.get(u + "/stats").json()["rumors_received"] for u in cluster.urls)
        # Unbatched, each write would take exactly one push to each other node.
        writes = NODES * PER_NODE
        print(f"\n{writes} writes through {NODES} nodes: {pushes} pushes received in all")
        assert pushes < writes * (NODES - 1)
