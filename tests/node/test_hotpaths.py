"""GET /get, POST /set and POST /gossip, taken past the router by node.web.hotpaths, answer
exactly as the routes behind it do: the same status, body and headers, errors included (a
`/set` body the hot path does not take goes on to FastAPI), over one shared state and in
every configuration that changes them."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from gossip.config import Config
from node.server.settings import Settings
from node.web.api import set_value_hot
from node.web.app import create_app
from node.web.hotpaths import HotPaths
from node.web.listener import listener_app
from tests.inprocess import serving

pytestmark = pytest.mark.anyio

TOKEN = "read-token"
CONFIG = Config.for_tests(cluster_id="hot")
AUTH = {"authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json", **AUTH}
CHARSET = {"content-type": "application/json; charset=utf-8", **AUTH}

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
    ("POST", "/set", JSON, b'{"key": "k2", "value": {"a": [1, 2.5, null]}, "ttl": 30}'),
    ("POST", "/set", AUTH, b'{"key": "k3", "value": 1}'),  # no content type: not JSON to FastAPI
    ("POST", "/set", CHARSET, b'{"key": "k4", "value": 2}'),
    ("POST", "/set", {"content-type": "application/json"}, b'{"key": "k", "value": 1}'),
    ("POST", "/set", {**JSON, "authorization": "Bearer wrong"}, b'{"key": "k", "value": 1}'),
    ("POST", "/set", {"content-type": "application/json"}, b'{"key": 1}'),
    ("POST", "/set", JSON, b'{"key": "k"'),
    ("POST", "/set", JSON, b'[1, 2]'),
    ("POST", "/set", JSON, b'{"key": "k", "value": 1, "ttl": true}'),
    ("POST", "/set", JSON, b'{"key": "k", "value": 1, "ttl": -1}'),
    ("POST", "/set", JSON, b'{"key": "k", "value": 1, "replicas": 65}'),
    ("POST", "/set", JSON, b'{"key": "k", "value": 1, "replicas": 1}'),  # no peers: 409
    ("POST", "/set", JSON, b'{"key": "k", "value": "\\ud800"}'),
    ("POST", "/set", JSON, b'{"key": "_gossip/x", "value": 1}'),
    ("POST", "/set", JSON, b'{"key": "k", "value": ' + b"[" * 40 + b"]" * 40 + b"}"),
    ("POST", "/set", {**AUTH, "content-type": "text/plain"}, b'{"key": "k", "value": 1}'),
    ("POST", "/set", JSON, b'{"key": "k", "value": "' + b"x" * CONFIG.max_body_bytes + b'"}'),
]


def _comparable(url: str, response: httpx.Response) -> bytes:
    """The answer, less the times a write is given (each of the two writes gets its own)."""
    if url == "/set" and response.status_code == 200:
        return json.dumps({**response.json(), "timestamp": None, "expires_at": None}).encode()
    return response.content


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
        (await fast.post("/set", json={"key": "k", "value": [1, "two"]}, headers=AUTH)).raise_for_status()
        plain = router_only(settings)
        plain.state.shared_state = hot.state.shared_state  # the same node behind both
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as slow:
            for method, url, headers, body in REQUESTS:
                a = await fast.request(method, url, headers=headers, content=body)
                b = await slow.request(method, url, headers=headers, content=body)
                assert (a.status_code, _comparable(url, a)) == (b.status_code, _comparable(url, b)), \
                    (method, url, body)
                for name in ("content-type", "www-authenticate", "content-length"):
                    assert a.headers.get(name) == b.headers.get(name), (method, url, name)


async def test_the_embedded_listener_takes_only_the_hot_paths_it_declares() -> None:
    """A worker's gossip listener has no /set: the hot path must not serve one either."""
    app = create_app(Settings(node_id="hot", config=CONFIG, discovery_dir="off"))
    async with serving(app):
        listener = listener_app(app.state.shared_state)
        transport = httpx.ASGITransport(app=listener)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            assert (await client.post("/set", json={"key": "k", "value": 1})).status_code in (404, 405)
            assert (await client.get("/get", params={"key": "k"})).status_code == 404  # served, and absent
        assert app.state.shared_state.get("k") is None


def test_the_embedded_listener_takes_the_hot_paths_too() -> None:
    class Stub:  # listener_app only stores the state
        id = "stub"

    app = listener_app(Stub())  # type: ignore[arg-type]
    assert any(getattr(m, "cls", None) is HotPaths for m in app.user_middleware)


async def test_hot_set_takes_a_well_formed_body_itself_and_hands_on_any_other() -> None:
    app = create_app(Settings(node_id="hot", config=CONFIG, discovery_dir="off"))
    async with serving(app):
        def request(body: bytes, content_type: str = "application/json") -> Request:
            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": body, "more_body": False}
            scope = {"type": "http", "method": "POST", "path": "/set", "app": app, "query_string": b"",
                     "headers": [(b"content-type", content_type.encode())]}
            return Request(scope, receive)

        assert isinstance(await set_value_hot(request(b'{"key": "k", "value": 1}')), Response)
        assert await set_value_hot(request(b'{"key": 1}')) == b'{"key": 1}'  # FastAPI answers, body replayed
        assert await set_value_hot(request(b'{"key": "k", "value": 1}', "text/plain")) is None  # unread
