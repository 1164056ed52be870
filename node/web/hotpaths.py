"""The hot routes, straight to their endpoints.

`GET /get`, `POST /set` and `POST /gossip` are most of what a node serves. This ASGI
middleware hands them to the same endpoint functions the router would, past route matching,
dependency solving and FastAPI's per-request wrapping (about a fifth of a node's time under a
write load, and half of what a `/set` costs in process), with the same answers and the same
error bodies. An endpoint may leave a request to FastAPI (`/set` does with any body it does not
take as it is), with the body it has read. The routes stay declared on the routers: the OpenAPI
schema, an app that embeds the routers and every other method or path go through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.web.api import get_value_hot, set_value_hot
from node.web.peer_api import receive_gossip

# An endpoint's answer, or the request left to FastAPI: None with its body unread, else the body.
Endpoint = Callable[[Request], Awaitable[Response | bytes | None]]

HOT: dict[tuple[str, str], Endpoint] = {
    ("GET", "/get"): lambda request: get_value_hot(request, request.query_params.get("key")),
    ("POST", "/set"): set_value_hot,
    ("POST", "/gossip"): receive_gossip,
}


class HotPaths:
    def __init__(self, app: ASGIApp, routes: Iterable[tuple[str, str]] = tuple(HOT)) -> None:
        """`routes`: those of HOT that the app declares (every one, in the node's own app)."""
        self.app = app
        self.hot = {route: HOT[route] for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.hot.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            answer = await endpoint(Request(scope, receive))
        except HTTPException as exc:  # as FastAPI's own handler answers it
            answer = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        if isinstance(answer, Response):
            await answer(scope, receive, send)
        else:
            await self.app(scope, receive if answer is None else _replay(answer, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for a request whose body was read already: that body, then the rest as it comes."""
    pending = [body]

    async def replayed() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replayed
