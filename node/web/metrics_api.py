"""GET /metrics: the node's figures in the Prometheus text format (node.monitoring.metrics).

Under `uvicorn --workers N` each worker is a node with a gossip listener of its own, and
each listener serves its worker's /metrics: scrape every listener (a port range given
with GOSSIP_PORT, or the addresses in the host directory), not the app's shared port,
which lands on any one worker."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node.web.http_basics import reader, state_of

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", dependencies=[Depends(reader)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """This node's metrics (gossip_*), for Prometheus to scrape."""
    return Response(generate_latest(state_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
