"""The peers' routes: POST /gossip, a coded message in, a coded reply out, each signed
when the cluster signs (node.server.inbox takes it in); and POST /probe, direct probes
(R23, node.server.probing), one-way. Not in the OpenAPI schema: they are for peers only,
from the `allow` networks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Request, Response

from gossip.auth import AuthError, ReplayError
from gossip.errors import IncompatibleMessage, PeerError
from node.state import SharedState
from node.web.http_basics import read_limited, state_of
from node.wire.transport import REFUSAL_HEADER, TIME_HEADER, wall_ms

gossip_router = APIRouter(tags=["gossip"])
T = TypeVar("T")


async def receive_gossip(request: Request) -> Response:
    """Peer exchange (for peers only, from the `allow` networks): a coded message in, a
    coded reply out. A plain route, with no dependency to resolve: it is the hot path."""
    state = state_of(request)
    reply = await _from_peer(request, state, "gossip", state.receive)
    if reply is None:
        return Response(status_code=204, headers={TIME_HEADER: str(wall_ms())})  # our time, on every answer
    headers = {TIME_HEADER: str(wall_ms()), **state.sign(reply)}  # our time: the peer estimates our offset
    return Response(reply, media_type="application/json", headers=headers)


async def _from_peer(
    request: Request, state: SharedState, what: str, receive: Callable[[bytes, Mapping[str, str]], T]
) -> T:
    """A peer's coded message, handed to `receive`: only from the `allow` networks and
    within the body limit, else refused, as is one `receive` finds at fault."""
    host = request.client.host if request.client else ""
    if not state.allows(host):
        problem = f"{what} from {host or 'an unknown address'} is not allowed"
        raise _refuse(state, host, 403, "NotAllowed", problem)
    body = await read_limited(request, state.config.max_body_bytes)
    try:
        return receive(body, request.headers)
    except PeerError as exc:
        status, problem = _refusal(exc)
        raise _refuse(state, host, status, type(exc).__name__, f"{problem}: {exc}") from exc


def _refusal(exc: PeerError) -> tuple[int, str]:
    if isinstance(exc, ReplayError):
        return 403, "refused gossip"
    if isinstance(exc, AuthError):
        return 401, "unauthenticated gossip"
    if isinstance(exc, IncompatibleMessage):
        return 409, "incompatible gossip"
    return 400, "rejected gossip"


def _refuse(state: SharedState, host: str, status: int, reason: str, detail: str) -> HTTPException:
    """Refuse a peer's gossip, noted for /health, naming the reason and our time so the
    peer can tell why (and how far apart our clocks are)."""
    state.peers.refused(host, status, reason, detail)
    if reason == "NotAllowed":
        state.rejected[reason] += 1  # (the others are counted where they are found)
    return HTTPException(status, detail, headers={REFUSAL_HEADER: reason, TIME_HEADER: str(wall_ms())})


gossip_router.add_route("/gossip", receive_gossip, methods=["POST"], include_in_schema=False)


async def receive_probe(request: Request) -> Response:
    """Direct probes (R23, for peers only, from the `allow` networks): a coded probe
    message in, a bare 204 out (answers go back as probe messages of their own); 404 on
    a node that does not probe."""
    state = state_of(request)
    probing = await _from_peer(request, state, "probes", state.receive_probe)
    if not probing:
        raise HTTPException(404, "this node does not probe (--probe-interval 0)")
    return Response(status_code=204, headers={TIME_HEADER: str(wall_ms())})


gossip_router.add_route("/probe", receive_probe, methods=["POST"], include_in_schema=False)


