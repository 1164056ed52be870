"""Change streams (node/recipes/watch.py, GET /watch): a consumer on one node sees every change
made on every node, once each, in the order the node applied them; a consumer that stops
reading is cut off with a clear last word, and the node's writes never wait for it.

`make test-recipes-long` adds the same cut-off over HTTP (a socket left unread)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from gossip.config import Config
from gossip.errors import CallerError
from gossip.store import Entry
from node.recipes.watch import WatchDropped
from node.server.settings import Settings
from node.tools.local_cluster import LocalCluster
from node.tools.testing import InProcessCluster
from node.web.app import create_app
from tests.inprocess import serving, single_node

# -- in process -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_watch_sees_every_change_of_every_node_once_in_order() -> None:
    async with InProcessCluster(3) as cluster:
        await cluster.converged()
        watched = cluster.states[0]
        changes = watched.watch(prefix="w:")
        per_node = 30
        for i in range(per_node):
            for n, state in enumerate(cluster.states):
                if i % 10 == 9:
                    state.delete(f"w:{n}:{i}")  # (a tombstone of a key never written: a change too)
                else:
                    state.set(f"w:{n}:{i}", i)
            watched.set(f"other:{i}", i)  # not under the prefix
        seen: list[Entry] = []
        with anyio.fail_after(10):
            async for change in changes:
                seen.append(change)
                if len(seen) == 3 * per_node:
                    break
        assert all(e.key.startswith("w:") for e in seen)
        # once each: no change twice; every write and every delete of every node
        assert len({(e.key, e.ts, e.origin) for e in seen}) == len(seen)
        assert {(e.key, e.deleted) for e in seen} == {
            (f"w:{n}:{i}", i % 10 == 9) for n in range(3) for i in range(per_node)
        }
        # in application order: each writer's changes in the order it made them
        by_writer: dict[str, list[Entry]] = defaultdict(list)
        for e in seen:
            by_writer[e.origin].append(e)
        assert all([e.ts for e in es] == sorted(e.ts for e in es) for es in by_writer.values())
        await changes.aclose()


@pytest.mark.anyio
async def test_writes_from_worker_threads_reach_the_watch() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        async with state.watch() as changes:
            await anyio.to_thread.run_sync(lambda: [state.set(f"t{i}", i) for i in range(50)])
            with anyio.fail_after(5):
                got = [(await changes.__anext__()).key for _ in range(50)]
        assert got == [f"t{i}" for i in range(50)]


@pytest.mark.anyio
async def test_writes_from_many_threads_at_once_all_arrive_once() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        async with state.watch(buffer=10_000) as changes, anyio.create_task_group() as tg:
            for t in range(4):
                writes = [(f"{t}:{i}", i) for i in range(500)]
                tg.start_soon(anyio.to_thread.run_sync, lambda w=writes: [state.set(k, v) for k, v in w])
            with anyio.fail_after(10):
                got = [(await changes.__anext__()).key for _ in range(2_000)]
        assert sorted(got) == sorted(f"{t}:{i}" for t in range(4) for i in range(500))
        for t in range(4):  # each thread's writes in the order it made them
            assert [k for k in got if k.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(500)]


@pytest.mark.anyio
async def test_a_consumer_that_stops_reading_is_dropped_and_writes_go_on() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        stalled = state.watch(buffer=8)
        reading = state.watch(buffer=2_000)
        for i in range(1_000):
            state.set(f"k{i}", i)  # never waits on the stalled consumer
        assert len(state._recipes.changes) == 1  # the stalled one is gone from the feed
        got = [(await stalled.__anext__()).key for _ in range(8)]
        assert got == [f"k{i}" for i in range(8)]  # what it had, then the reason
        with pytest.raises(WatchDropped, match="fell behind: 8 changes waited unread"):
            await stalled.__anext__()
        with anyio.fail_after(5):
            assert [(await reading.__anext__()).key for _ in range(1_000)][-1] == "k999"


@pytest.mark.anyio
async def test_reserved_keys_only_for_a_watch_of_the_reserved_prefix() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        everything, internal = state.watch(), state.watch(prefix="_gossip/")
        state.write_reserved("_gossip/job/x", {"tick": 1})
        state.set("user", 1)
        with anyio.fail_after(5):
            assert (await everything.__anext__()).key == "user"
            assert (await internal.__anext__()).key == "_gossip/job/x"


@pytest.mark.anyio
async def test_a_reset_ends_every_watch_with_the_reason() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        changes = state.watch()
        state.protocol.stats.resets += 1  # as GossipProtocol._reset counts one
        state.set("after", 1)  # the state the node catches up with: not mixed into the old stream
        with pytest.raises(WatchDropped, match="this node was reset"):
            await changes.__anext__()


@pytest.mark.anyio
async def test_bad_watch_arguments_are_refused() -> None:
    async with serving(single_node()) as client:
        state = client._transport.app.state.shared_state  # type: ignore[attr-defined]
        for buffer in (0, -1, 10**9, True, 1.5):
            with pytest.raises(CallerError, match="buffer must be a whole number"):
                state.watch(buffer=buffer)
        with pytest.raises(CallerError, match="prefix must be a string"):
            state.watch(prefix=1)
        assert len(state._recipes.changes) == 0
        for query in ("buffer=0", "buffer=x", "buffer=100001"):
            assert (await client.get(f"/watch?{query}")).status_code == 422


@pytest.mark.anyio
async def test_watch_and_services_follow_the_read_token_rule() -> None:
    settings = Settings(node_id="solo", api_token="secret", protect_reads=True, config=Config.for_tests())
    async with serving(create_app(settings)) as client:
        for path in ("/watch", "/services/api"):
            assert (await client.get(path)).status_code == 401
        answer = await client.get("/services/api", headers={"authorization": "Bearer secret"})
        assert answer.status_code == 200 and answer.json() == {"service": "api", "instances": []}


# -- real processes: the SSE endpoint ---------------------------------------------------------


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of each Server-Sent Event; comment lines skipped."""
    event, data = "", ""
    for line in lines:
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and event:
            yield event, json.loads(data)
            event, data = "", ""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(nodes=3, interval=0.2) as cluster:
        yield cluster


def test_sse_consumer_sees_every_write_of_the_other_nodes_once_in_order(cluster: LocalCluster) -> None:
    writes_per_node = 40
    with httpx.Client(timeout=10) as client:
        seen: list[dict[str, Any]] = []
        with client.stream("GET", cluster.urls[0] + "/watch", params={"prefix": "sse:"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")

            def write() -> None:
                with httpx.Client(timeout=10) as writer:
                    for i in range(writes_per_node):
                        for url in cluster.urls[1:]:
                            writer.post(url + "/set", json={"key": f"sse:{url[-5:]}:{i}", "value": i},
                                        headers=cluster.headers()).raise_for_status()

            threading.Thread(target=write, daemon=True).start()
            for event, data in events(stream.iter_lines()):
                assert event == "change", data
                seen.append(data)
                if len(seen) == 2 * writes_per_node:
                    break
        assert set(seen[0]) == {"key", "value", "timestamp", "node", "deleted", "expires_at"}
        assert len({d["key"] for d in seen}) == len(seen)  # once each
        by_node: dict[str, list[int]] = defaultdict(list)
        for d in seen:
            by_node[d["node"]].append(d["value"])
        assert by_node == {node: list(range(writes_per_node)) for node in ("n2", "n3")}  # in order



def test_a_node_with_an_open_watch_stream_still_stops_and_says_goodbye(cluster: LocalCluster) -> None:
    """An SSE stream never ends by itself: SIGTERM must not wait for it forever, or the
    node would be killed at the end of its stop grace period without leaving."""
    with httpx.Client(timeout=10) as client, client.stream("GET", cluster.urls[2] + "/watch") as stream:
        assert stream.status_code == 200
        cluster.leave("n3")  # SIGTERM, and wait (10 s at most) for the process to exit
    statuses = {m["id"]: m["status"] for m in httpx.get(cluster.urls[0] + "/members").json()["members"]}
    assert statuses["n3"] == "left"
    cluster.restart("n3")


WRITES = 150


@pytest.mark.skipif(not os.environ.get("RECIPES_LONG"),
                    reason="in make test-recipes-long (the overflow itself is shown in process above)")
def test_sse_consumer_that_stops_reading_is_dropped_and_writes_go_on(cluster: LocalCluster) -> None:
    with httpx.Client(timeout=10) as client:
        host, port = cluster.urls[0].removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a consumer that reads nothing
        sock.connect((host, int(port)))
        sock.sendall(f"GET /watch?prefix=big&buffer=16 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        big = "x" * 60_000
        # Fill what the sockets hold (here about 50 such changes), then the watch's buffer of
        # 16: every write still succeeds.
        for i in range(WRITES):
            response = client.post(cluster.urls[0] + "/set", json={"key": f"big{i}", "value": big},
                                   headers=cluster.headers())
            assert response.status_code == 200, response.text
        assert client.get(cluster.urls[0] + "/get", params={"key": f"big{WRITES - 1}"}).status_code == 200
        # Reading again: what was buffered, then the dropped event, and the stream ends.
        sock.settimeout(10)
        received = b""
        while b"event: dropped" not in received:
            chunk = sock.recv(1 << 20)
            assert chunk, received[-500:]
            received += chunk
        sock.close()
        text = received.decode()
        assert "200 OK" in text.split("\r\n", 1)[0]
        assert "text/event-stream" in text.split("\r\n\r\n", 1)[0]
        dropped = text[text.index("event: dropped") :].split("\n")[1]
        assert json.loads(dropped.removeprefix("data: "))["reason"].startswith("fell behind: 16 changes")
        assert text.count("event: change") < WRITES  # it was cut off, not served everything


@pytest.mark.anyio
async def test_watch_app_audits_flag_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOSSIP_DISCOVERY_DIR", str(tmp_path))
    monkeypatch.setenv("GOSSIP_CLUSTER_ID", "watch-example")
    from examples.watch_app import app

    async with serving(app) as client:
        assert (await client.put("/flags/dark-mode", json=True)).status_code == 200
        assert (await client.delete("/flags/dark-mode")).status_code == 200
        with anyio.fail_after(5):
            while len((await client.get("/audit")).json()) < 2:
                await anyio.sleep(0.01)
        audit = (await client.get("/audit")).json()
        node = app.state.shared_state.id
        assert audit == [{"flag": "dark-mode", "on": True, "deleted": False, "by": node},
                         {"flag": "dark-mode", "on": None, "deleted": True, "by": node}]
