"""The peers' routes: POST /gossip, a coded message in, a coded reply out, each signed
when the cluster signs (node.server.inbox takes it in); and POST /probe, direct probes
(R23, node.server.probing), one-way. Not in the OpenAPI schema: they are for peers only,
from the `allow` networks."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from gossip.auth import AuthError, ReplayError
from gossip.errors import IncompatibleMessage, PeerError
from node.state import SharedState
from node.web.http_basics import read_limited, state_of
from node.wire.transport import REFUSAL_HEADER, TIME_HEADER, wall_ms

gossip_router = APIRouter(tags=["gossip"])


async def receive_gossip(request: Request) -> Response:
    """Peer exchange (for peers only, from the `allow` networks): a coded message in, a
    coded reply out. A plain route, with no dependency to resolve: it is the hot path."""
    state = state_of(request)
    host = request.client.host if request.client else ""
    if not state.allows(host):
        problem = f"gossip from {host or 'an unknown address'} is not allowed"
        raise _refuse(state, host, 403, "NotAllowed", problem)
    body = await read_limited(request, state.config.max_body_bytes)
    try:
        reply = state.receive(body, request.headers)
    except PeerError as exc:
        status, what = _refusal(exc)
        raise _refuse(state, host, status, type(exc).__name__, f"{what}: {exc}") from exc
    if reply is None:
        return Response(status_code=204, headers={TIME_HEADER: str(wall_ms())})  # our time, on every answer
    headers = {TIME_HEADER: str(wall_ms()), **state.sign(reply)}  # our time: the peer estimates our offset
    return Response(reply, media_type="application/json", headers=headers)


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
    host = request.client.host if request.client else ""
    if not state.allows(host):
        problem = f"probes from {host or 'an unknown address'} are not allowed"
        raise _refuse(state, host, 403, "NotAllowed", problem)
    body = await read_limited(request, state.config.max_body_bytes)
    try:
        probing = state.receive_probe(body, request.headers)
    except PeerError as exc:
        status, what = _refusal(exc)
        raise _refuse(state, host, status, type(exc).__name__, f"{what}: {exc}") from exc
    if not probing:
        raise HTTPException(404, "this node does not probe (--probe-interval 0)")
    return Response(status_code=204, headers={TIME_HEADER: str(wall_ms())})


gossip_router.add_route("/probe", receive_probe, methods=["POST"], include_in_schema=False)


