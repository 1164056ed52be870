"""Which routes go where: the standalone node serves them all; an app embedding the shared
state mounts `router`, the client API (its own gossip route it mounts apart)."""

from __future__ import annotations

from fastapi import APIRouter

from node.web.admin_api import admin_router
from node.web.api import read_router, write_router
from node.web.dashboard import dashboard_router
from node.web.metrics_api import router as metrics_router
from node.web.peer_api import gossip_router
from node.web.recipes_api import recipes_router

# The standalone node's, in the order of its OpenAPI schema.
NODE_ROUTERS: tuple[APIRouter, ...] = (
    read_router, write_router, gossip_router, admin_router, metrics_router, recipes_router, dashboard_router,
)

router = APIRouter()  # the client API and the dashboard (GET /ui), for an app of the user's
for _part in (read_router, write_router, dashboard_router, recipes_router):
    router.include_router(_part)
