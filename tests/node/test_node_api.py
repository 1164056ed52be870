"""The node's HTTP API in-process: the contract in the README's API table, and bad input getting a
clear 4xx that changes nothing while the node keeps serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from gossip.codec import PROTOCOL_VERSION as V
from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange, WriterDelta
from gossip.store import Entry, Timestamp
from tests.inprocess import serving, single_node

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(single_node()) as c:
        yield c


async def test_set_get_delete_round_trip(client: httpx.AsyncClient) -> None:
    r = await client.post("/set", json={"key": "color", "value": {"rgb": [0, 0, 255]}})
    assert r.status_code == 200
    written = r.json()
    assert written["node"] == "solo" and len(written["timestamp"]) == 2
    r = await client.get("/get", params={"key": "color"})
    assert r.status_code == 200 and r.json()["value"] == {"rgb": [0, 0, 255]}
    assert r.json()["timestamp"] == written["timestamp"]
    assert (await client.get("/get")).json() == {"node": "solo", "values": {"color": {"rgb": [0, 0, 255]}}}
    assert (await client.post("/delete", json={"key": "color"})).status_code == 200
    r = await client.get("/get", params={"key": "color"})
    assert r.status_code == 404 and "color" in r.json()["detail"]
    assert (await client.get("/get")).json()["values"] == {}


async def test_null_is_a_value_and_later_write_wins(client: httpx.AsyncClient) -> None:
    await client.post("/set", json={"key": "k", "value": 1})
    await client.post("/set", json={"key": "k", "value": None})
    r = await client.get("/get", params={"key": "k"})
    assert r.status_code == 200 and r.json()["value"] is None


async def test_health_members_digest(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert (health["status"], health["node"]) == ("ok", "solo")
    assert health["alone"] == "no seeds and no other member: a one-node cluster"
    members = (await client.get("/members")).json()["members"]
    assert [m["id"] for m in members] == ["solo"] and members[0]["status"] == "alive"
    empty = (await client.get("/digest")).json()
    await client.post("/set", json={"key": "a", "value": 1})
    one = (await client.get("/digest")).json()
    assert one["keys"] == 1 and one["digest"] != empty["digest"]
    assert (await client.get("/openapi.json")).status_code == 200


async def test_ttl_expires(client: httpx.AsyncClient) -> None:
    r = await client.post("/set", json={"key": "t", "value": "soon gone", "ttl": 0.05})
    assert r.status_code == 200 and r.json()["expires_at"] is not None
    import anyio

    with anyio.fail_after(5):
        while (await client.get("/get", params={"key": "t"})).status_code != 404:
            await anyio.sleep(0.01)


def _far_future_exchange(config: Config) -> bytes:
    ts = Timestamp(2**52, 0)
    entry = Entry("victim", "from the future", ts, "evil")
    sender = MemberInfo("evil", "http://127.0.0.1:1", 1, 1)
    delta = WriterDelta("evil", Timestamp(0, 0), ts, (entry,))
    return Codec(config).encode(Exchange(sender, {"evil": ts}, (sender,), (delta,)))


BAD_REQUESTS: list[tuple[str, str, dict[str, object], int, str]] = [
    # (method, path, httpx kwargs, expected status, a word the message must contain)
    ("POST", "/set", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "json"),
    ("POST", "/set", {"json": {"value": 1}}, 422, "key"),
    ("POST", "/set", {"json": {"key": "k"}}, 422, "value"),
    ("POST", "/set", {"json": {"key": 5, "value": 1}}, 422, "string"),
    ("POST", "/set", {"json": {"key": "", "value": 1}}, 422, "empty"),
    ("POST", "/set", {"json": {"key": "k" * 300, "value": 1}}, 422, "limit"),
    ("POST", "/set", {"json": {"key": "k", "value": "v" * 70_000}}, 422, "limit"),
    ("POST", "/set", {"json": {"key": "k", "value": 1, "ttl": -1}}, 422, "ttl"),
    ("POST", "/set", {"json": {"key": "k", "value": json.loads("[" * 40 + "]" * 40)}}, 422, "deeper"),
    ("POST", "/set", {"json": [1, 2]}, 422, "dict"),
    ("POST", "/set", {"content": b"x" * (3 * 1024 * 1024)}, 413, "limit"),
    ("POST", "/delete", {"json": {}}, 422, "key"),
    ("POST", "/delete", {"json": {"key": ["a"]}}, 422, "string"),
    ("GET", "/get?key=" + "k" * 10, {}, 404, "not found"),
    ("POST", "/gossip", {"content": b"garbage"}, 400, "JSON"),
    ("POST", "/gossip", {"json": {"v": V, "cluster": "default", "type": "exchange"}}, 400, "sender"),
    ("POST", "/gossip", {"json": {"v": V, "cluster": "other", "type": "rumor"}}, 409, "cluster"),
    ("POST", "/gossip", {"json": {"v": 99, "cluster": "default", "type": "rumor"}}, 409, "version"),
    ("POST", "/gossip", {"content": b"[" * 100_000}, 400, "JSON"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "word"), BAD_REQUESTS)
async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, object], status: int, word: str
) -> None:
    await client.post("/set", json={"key": "k", "value": "original"})
    before = (await client.get("/digest")).json()
    r = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert word.lower() in r.text.lower()
    assert (await client.get("/digest")).json() == before
    assert (await client.get("/get", params={"key": "k"})).json()["value"] == "original"
    assert (await client.get("/health")).status_code == 200


async def test_far_future_gossip_is_refused_and_key_stays_writable(client: httpx.AsyncClient) -> None:
    before = (await client.get("/digest")).json()
    r = await client.post("/gossip", content=_far_future_exchange(Config.for_tests()))
    assert r.status_code == 400 and "ahead" in r.text
    assert (await client.get("/digest")).json() == before
    written = (await client.post("/set", json={"key": "victim", "value": "mine"})).json()
    assert written["timestamp"][0] < 2**52  # the clock did not jump to the bad timestamp
    assert (await client.get("/get", params={"key": "victim"})).json()["value"] == "mine"


async def test_chunked_body_over_limit_gets_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536  # 2.5 MiB with no Content-Length

    before = (await client.get("/digest")).json()
    for path in ("/set", "/gossip"):
        r = await client.post(path, content=chunks())
        assert r.status_code == 413 and "limit" in r.text
    assert (await client.get("/digest")).json() == before
