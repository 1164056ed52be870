"""The two hot routes, straight to their endpoints.

`GET /get` and `POST /gossip` are most of what a node serves. This ASGI middleware hands
them to the same endpoint functions the router would, past route matching and FastAPI's
per-request wrapping (about a fifth of a node's time under a write load), with the same
answers and the same error bodies. The routes stay declared on the routers: the OpenAPI
schema, an app that embeds the routers and every other method or path go through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from node.web.api import get_value_hot
from node.web.peer_api import receive_gossip

Endpoint = Callable[[Request], Awaitable[Response]]

HOT: dict[tuple[str, str], Endpoint] = {
    ("GET", "/get"): lambda request: get_value_hot(request, request.query_params.get("key")),
    ("POST", "/gossip"): receive_gossip,
}


class HotPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = HOT.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except HTTPException as exc:  # as FastAPI's own handler answers it
            response = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        await response(scope, receive, send)
