"""A burst of writes through every node of a 10-node cluster of real processes: pushes
are batched and coalesced under load (docs/PROTOCOL.md, R21), and every node must end
with every acknowledged key, and, for keys written again and again, the newest value.

A write whose connection fails gets no answer, so it is not acknowledged, and the client
sends it again, as any client would: on this 2-core machine, with eleven processes busy,
a few requests wait seconds and uvicorn's keep-alive timer closes their connection."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import httpx

from node.tools.local_cluster import LocalCluster
from tests.polling import wait_until

NODES = 10
PER_NODE = 120  # writes through each node, 8 at a time
HOT_KEYS = 5  # keys every node writes again and again (coalesced in pushes)
RETRIES = 3


def test_a_write_burst_through_every_node_reaches_every_node() -> None:
    acked: dict[str, tuple[object, tuple[int, int], str]] = {}

    unanswered = 0

    with LocalCluster(NODES, interval=0.2) as cluster:

        async def burst() -> None:
            async with AsyncExitStack() as stack:
                limits = httpx.Limits(max_connections=8)  # a client per node: one lane, one connection
                clients = [await stack.enter_async_context(httpx.AsyncClient(timeout=10, limits=limits))
                           for _ in cluster.urls]

                async def post(node: int, body: dict[str, object]) -> httpx.Response:
                    nonlocal unanswered
                    for _ in range(RETRIES):
                        try:
                            return await clients[node].post(cluster.urls[node] + "/set", json=body)
                        except httpx.TransportError:
                            unanswered += 1
                    raise AssertionError(f"no answer from node {node} in {RETRIES} tries")

                async def writer(node: int, lane: int) -> None:
                    for i in range(lane, PER_NODE, 8):
                        key = f"hot-{i % HOT_KEYS}" if i % 3 == 0 else f"n{node}-{i}"
                        r = await post(node, {"key": key, "value": [node, i]})
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
        print(f"\n{writes} writes through {NODES} nodes: {pushes} pushes received in all; "
              f"{unanswered} requests unanswered and sent again")
        assert pushes < writes * (NODES - 1)
