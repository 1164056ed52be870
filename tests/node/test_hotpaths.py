"""GET /get and POST /gossip, taken past the router by node.web.hotpaths, answer exactly as
the routes behind it do: the same status, body and headers, errors included, over one
shared state and in every configuration that changes them."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gossip.config import Config
from node.server.settings import Settings
from node.web.app import create_app
from node.web.hotpaths import HotPaths
from node.web.listener import listener_app
from tests.inprocess import serving

pytestmark = pytest.mark.anyio

TOKEN = "read-token"
CONFIG = Config.for_tests(cluster_id="hot")

REQUESTS = [
    ("GET", "/get?key=k", {}, None),
    ("GET", "/get?key=absent", {}, None),
    ("GET", "/get", {}, None),
    ("GET", "/get?key=", {}, None),
    ("GET", "/get?key=absent&key=k", {}, None),
    ("GET", "/get?key=k", {"authorization": f"Bearer {TOKEN}"}, None),
    ("GET", "/get?key=k", {"authorization": "Bearer wrong"}, None),
    ("POST", "/gossip", {}, b"not a message"),
    ("POST", "/gossip", {"x-gossip-key": "00", "x-gossip-signature": "00"}, b"{}"),
    ("POST", "/gossip", {}, b"x" * (CONFIG.max_body_bytes + 1)),
]


def router_only(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if getattr(m, "cls", None) is not HotPaths]
    return app


@pytest.mark.parametrize("protect_reads", [False, True])
@pytest.mark.parametrize("gossip_key", ["", "11" * 32])
async def test_hot_paths_answer_as_the_routes_do(protect_reads: bool, gossip_key: str) -> None:
    settings = Settings(node_id="hot", config=CONFIG, api_token=TOKEN, protect_reads=protect_reads,
                        gossip_key=gossip_key, discovery_dir="off")
    hot = create_app(settings)
    assert any(getattr(m, "cls", None) is HotPaths for m in hot.user_middleware)
    async with serving(hot) as fast:
        auth = {"authorization": f"Bearer {TOKEN}"}
        (await fast.post("/set", json={"key": "k", "value": [1, "two"]}, headers=auth)).raise_for_status()
        plain = router_only(settings)
        plain.state.shared_state = hot.state.shared_state  # the same node behind both
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as slow:
            for method, url, headers, body in REQUESTS:
                a = await fast.request(method, url, headers=headers, content=body)
                b = await slow.request(method, url, headers=headers, content=body)
                assert (a.status_code, a.content) == (b.status_code, b.content), (method, url)
                for name in ("content-type", "www-authenticate", "content-length"):
                    assert a.headers.get(name) == b.headers.get(name), (method, url, name)


def test_the_embedded_listener_takes_the_hot_paths_too() -> None:
    class Stub:  # listener_app only stores the state
        id = "stub"

    app = listener_app(Stub())  # type: ignore[arg-type]
    assert any(getattr(m, "cls", None) is HotPaths for m in app.user_middleware)
