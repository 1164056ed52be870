"""The node's routes gathered as one NodeRoutes (node.web.routes): a request for a path none of
them takes reaches the app's own route without any of them being tried, and every request
answers as it did with the node's routers included one by one: in the standalone node
(create_app) and in an app that includes node.router, with or without a prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.routing import Route
from starlette.types import Scope

from gossip.config import Config
from node import router
from node.server.settings import Settings
from node.web import openapi
from node.web.api import read_router, write_router
from node.web.app import create_app, shared_state_lifespan
from node.web.dashboard import dashboard_router
from node.web.recipes_api import recipes_router
from node.web.routes import NODE_ROUTERS, NodeRoutes
from tests.inprocess import serving

pytestmark = pytest.mark.anyio

SETTINGS = Settings(node_id="routes", config=Config.for_tests(cluster_id="routes"), discovery_dir="off")
USER_PATH = "/fast/get"  # ends like the node's /get: node.router's test lets it through


def with_user_route(app: FastAPI) -> FastAPI:
    @app.get(USER_PATH)
    async def fast_get(key: str, request: Request) -> dict[str, Any]:
        return {"key": key, "value": request.app.state.shared_state.get(key)}

    return app


@contextmanager
def node_routes_tried() -> Iterator[list[str]]:
    """The paths of the node's routes asked to match a request while the block runs."""
    ours = {id(route) for part in NODE_ROUTERS for route in part.routes}
    tried: list[str] = []
    originals: dict[type[Route], Callable[..., Any]] = {
        cls: cls.__dict__["matches"] for cls in (Route, APIRoute) if "matches" in cls.__dict__
    }

    def counting(original: Callable[..., Any]) -> Callable[..., Any]:
        def matches(self: Route, scope: Scope) -> Any:
            if id(self) in ours:
                tried.append(self.path)
            return original(self, scope)
        return matches

    with pytest.MonkeyPatch.context() as patch:
        for cls, original in originals.items():
            patch.setattr(cls, "matches", counting(original))
        yield tried


async def test_a_route_after_the_standalone_nodes_tries_none_of_them() -> None:
    app = with_user_route(create_app(SETTINGS))
    async with serving(app) as client:
        app.state.shared_state.set("k", "v")
        with node_routes_tried() as tried:
            answer = await client.get(USER_PATH, params={"key": "k"})
        assert answer.json() == {"key": "k", "value": "v"}
        assert tried == []
        with node_routes_tried() as tried:  # the count sees a node route being tried
            assert (await client.get("/digest")).status_code == 200
        assert "/digest" in tried


async def test_a_route_after_node_router_tries_none_of_them_unless_its_path_ends_like_theirs() -> None:
    app = FastAPI(lifespan=shared_state_lifespan(SETTINGS, own_listener=False))
    app.include_router(router, prefix="/node")
    with_user_route(app)

    @app.get("/flags")
    async def flags() -> dict[str, bool]:
        return {"dark": True}

    async with serving(app) as client:
        app.state.shared_state.set("k", "v")
        with node_routes_tried() as tried:
            assert (await client.get("/flags")).json() == {"dark": True}
        assert tried == []
        with node_routes_tried() as tried:  # could be /node's (/node/get): matched as usual, and answered
            assert (await client.get(USER_PATH, params={"key": "k"})).json() == {"key": "k", "value": "v"}
        assert "/get" in tried


def one_by_one(parts: tuple[APIRouter, ...], prefix: str = "") -> FastAPI:
    """An app with `parts` included each on its own, as the node's routers were."""
    app = FastAPI()
    for part in parts:
        app.include_router(part, prefix=prefix)
    app.add_exception_handler(405, openapi.method_not_allowed)
    return with_user_route(app)


def requests(prefix: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    p = prefix
    return [
        ("GET", f"{USER_PATH}?key=k", None), ("GET", f"{p}/get?key=k", None),
        ("GET", f"{p}/get?key=none", None), ("GET", f"{p}/get/", None), ("GET", f"{p}/digest", None),
        ("DELETE", f"{p}/set", None), ("POST", f"{p}/set", {"key": ""}), ("GET", f"{p}/services/web", None),
        ("GET", f"{p}/admin/keys", None), ("POST", f"{p}/admin/keys/k1/primary", None),
        ("DELETE", f"{p}/admin/keys/k1", None), ("GET", f"{p}/admin/keys/k1/other", None),
        ("GET", "/get?key=k", None), ("GET", "/nowhere", None), ("GET", f"{p}/ui", None),
    ]


async def answers(app: FastAPI, prefix: str) -> list[tuple[int, bytes, str | None, str | None]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        out = []
        for method, url, body in requests(prefix):
            r = await client.request(method, url, json=body)
            out.append((r.status_code, r.content, r.headers.get("allow"), r.headers.get("location")))
        return out


async def test_the_standalone_node_answers_as_with_its_routers_one_by_one() -> None:
    app = with_user_route(create_app(SETTINGS))
    async with serving(app):
        app.state.shared_state.set("k", [1, "two"])
        legacy = one_by_one(NODE_ROUTERS)
        legacy.state.shared_state = app.state.shared_state  # the same node behind both
        assert await answers(app, "") == await answers(legacy, "")


@pytest.mark.parametrize("prefix", ["", "/node"])
async def test_an_app_including_node_router_answers_as_with_its_routers_one_by_one(prefix: str) -> None:
    app = FastAPI(lifespan=shared_state_lifespan(SETTINGS, own_listener=False))
    app.include_router(router, prefix=prefix)
    app.add_exception_handler(405, openapi.method_not_allowed)
    with_user_route(app)
    async with serving(app):
        app.state.shared_state.set("k", [1, "two"])
        legacy = one_by_one((read_router, write_router, dashboard_router, recipes_router), prefix)
        legacy.state.shared_state = app.state.shared_state
        assert await answers(app, prefix) == await answers(legacy, prefix)


async def test_a_route_added_to_node_routes_later_is_served() -> None:
    app = FastAPI(lifespan=shared_state_lifespan(SETTINGS, own_listener=False))
    mine = NodeRoutes((read_router,), prefixed=True)
    app.include_router(mine)
    async with serving(app) as client:
        assert (await client.get("/digest")).status_code == 200
        assert (await client.get("/extra")).status_code == 404

        @mine.get("/extra")
        async def extra() -> dict[str, bool]:
            return {"extra": True}

        assert (await client.get("/extra")).json() == {"extra": True}
