"""A node with a cluster key and an api token, in process: who may gossip, who may
write, and runtime key rotation through the admin routes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gossip.auth import KeyRing, key_id, sign
from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Rumor, RumorItem
from gossip.store import Entry, Timestamp
from node.server.settings import Settings
from node.web.app import create_app
from tests.inprocess import serving

pytestmark = pytest.mark.anyio

K1, K2 = "11" * 32, "22" * 32
TOKEN = "s3cret-token"
CONFIG = Config.for_tests(cluster_id="secure")


def settings(**changes: object) -> Settings:
    base = Settings(node_id="guarded", gossip_key=K1, api_token=TOKEN, config=CONFIG, discovery_dir="off")
    return base.replace(**changes)


@pytest.fixture
async def node() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings())) as client:
        yield client


def rumor(key: str = "pushed", value: str = "by a peer") -> bytes:
    now = time.time_ns() // 1_000_000
    entry = Entry(key, value, Timestamp(now, 0), "peer")
    sender = MemberInfo("peer", "http://127.0.0.1:9", 1, 1)
    return Codec(CONFIG).encode(Rumor.of(sender, (RumorItem(entry, Timestamp(0, 0)),)))


def signed(body: bytes, key: str = K1, nonce: str = "nonce-1", cluster: str = "secure") -> dict[str, str]:
    ring = KeyRing.of(bytes.fromhex(key))
    return sign(ring, cluster, body, time.time_ns() // 1_000_000, nonce)


AUTH = {"authorization": f"Bearer {TOKEN}"}


async def test_signed_gossip_is_applied_once(node: httpx.AsyncClient) -> None:
    body = rumor()
    headers = signed(body)
    assert (await node.post("/gossip", content=body, headers=headers)).status_code == 204
    assert (await node.get("/get", params={"key": "pushed"})).json()["value"] == "by a peer"
    again = await node.post("/gossip", content=body, headers=headers)
    assert again.status_code == 403 and "replayed" in again.text


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "unsigned"),
        (signed(rumor("evil"), key=K2), 401, "does not accept"),
        (signed(rumor("other"), cluster="other-cluster"), 401, "bad signature"),
        ({**signed(rumor("evil")), "x-gossip-time": "1"}, 401, "bad signature"),
    ],
)
async def test_unauthenticated_gossip_changes_nothing(
    node: httpx.AsyncClient, headers: dict[str, str], status: int, words: str
) -> None:
    before = (await node.get("/digest")).json()
    r = await node.post("/gossip", content=rumor("evil"), headers=headers)
    assert r.status_code == status and words in r.text
    assert (await node.get("/digest")).json() == before
    stats = (await node.get("/stats")).json()
    assert stats["rejected"] == 1 and sum(stats["rejected_by_reason"].values()) == 1


async def test_writes_need_the_token_reads_do_not(node: httpx.AsyncClient) -> None:
    r = await node.post("/set", json={"key": "k", "value": 1})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "missing" in r.text
    r = await node.post("/set", json={"key": "k", "value": 1}, headers={"authorization": "Bearer nope"})
    assert r.status_code == 401 and "valid bearer token" in r.text
    assert (await node.post("/delete", json={"key": "k"})).status_code == 401
    assert (await node.get("/get")).json()["values"] == {}
    assert (await node.post("/set", json={"key": "k", "value": 1}, headers=AUTH)).status_code == 200
    assert (await node.get("/get", params={"key": "k"})).json()["value"] == 1


async def test_protected_reads() -> None:
    async with serving(create_app(settings(protect_reads=True))) as node:
        assert (await node.get("/get")).status_code == 401
        assert (await node.get("/get", headers=AUTH)).status_code == 200


async def test_admin_routes_are_off_without_a_token() -> None:
    async with serving(create_app(settings(api_token=""))) as node:
        r = await node.get("/admin/keys")
        assert r.status_code == 403 and "api token" in r.text


async def test_rotation_through_admin_routes(node: httpx.AsyncClient) -> None:
    old, new = key_id(bytes.fromhex(K1)), key_id(bytes.fromhex(K2))
    assert (await node.get("/admin/keys")).status_code == 401
    assert (await node.get("/admin/keys", headers=AUTH)).json() == {"primary": old, "keys": [old]}
    bad = await node.post("/admin/keys", json={"key": "xyz"}, headers=AUTH)
    assert bad.status_code == 422 and "64 hex" in bad.text
    for _ in range(2):  # each step may be repeated
        r = await node.post("/admin/keys", json={"key": K2}, headers=AUTH)
        assert r.json() == {"primary": old, "keys": sorted([old, new])}
    refused = await node.delete(f"/admin/keys/{old}", headers=AUTH)
    assert refused.status_code == 409 and "primary" in refused.text
    for _ in range(2):
        assert (await node.post(f"/admin/keys/{new}/primary", headers=AUTH)).json()["primary"] == new
    for _ in range(2):
        assert (await node.delete(f"/admin/keys/{old}", headers=AUTH)).json()["keys"] == [new]
    body = rumor("late")
    assert (await node.post("/gossip", content=body, headers=signed(body, K1, "n2"))).status_code == 401
    assert (await node.post("/gossip", content=body, headers=signed(body, K2, "n3"))).status_code == 204
