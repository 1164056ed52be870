"""GET /metrics: the node's figures in the Prometheus text format (node.monitoring.metrics).

Under `uvicorn --workers N` each worker is a node with a gossip listener of its own, and
each listener serves its worker's /metrics: scrape every listener (a port range given
with GOSSIP_PORT, or the addresses in the host directory), not the app's shared port,
which lands on any one worker.

prometheus_client, which renders the text, loads on the first scrape; the content type it
answers with (the exposition format's version is the library's) goes into the node's
OpenAPI schema when the schema is built (`declare_content_type`, node.web.openapi)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from node.web.http_basics import reader, state_of

router = APIRouter(tags=["monitoring"])
PLAIN = "text/plain"  # in the schema until the node's own (node.web.openapi) names the version
TEXT_SCHEMA = {"schema": {"type": "string"}}


@router.get("/metrics", dependencies=[Depends(reader)], response_class=Response,
            responses={200: {"content": {PLAIN: TEXT_SCHEMA}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """This node's metrics (gossip_*), for Prometheus to scrape."""
    body, content_type = state_of(request).metrics.render()
    return Response(body, media_type=content_type)


def declare_content_type(operation: dict[str, Any]) -> None:
    """State in /metrics' operation the exact content type a scrape answers with."""
    from node.monitoring.prometheus_text import content_type

    content = operation.get("responses", {}).get("200", {}).get("content", {})
    if PLAIN in content:
        content[content_type()] = content.pop(PLAIN)
