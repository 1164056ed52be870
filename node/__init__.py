"""The FastAPI node: HTTP routes, background gossip loops, and the HTTP transport, each
in a room of its own, lowest floor first: wire/ (the peer wire), server/ (one node's
state and loops), monitoring/ (/health, /metrics, the membership log), recipes/ (change
streams, registry, jobs), state.py (SharedState, assembling them), web/ (the HTTP face
and the apps that run a node), tools/ (gossip-cluster, gossip-ctl, clusters for tests).

The modules beside this one are the paths users import: node.state, and aliases of the
room modules the README names (jobs, watch, openapi, limits_storage, testing,
pytest_plugin). The names below are imported on first use, so that a tool that needs
only part of the package (`gossip-ctl` needs httpx alone) does not load FastAPI."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.server.settings import Settings
    from node.state import SharedState
    from node.web.app import create_app, running_node, shared_state_lifespan
    from node.web.http_basics import StateDep, shared_state
    from node.web.peer_api import gossip_router
    from node.web.ratelimit import RateLimit, client_ip
    from node.web.routes import router

_HOMES = {
    "StateDep": "node.web.http_basics", "gossip_router": "node.web.peer_api", "router": "node.web.routes",
    "shared_state": "node.web.http_basics",
    "create_app": "node.web.app", "running_node": "node.web.app", "shared_state_lifespan": "node.web.app",
    "RateLimit": "node.web.ratelimit", "client_ip": "node.web.ratelimit",
    "Settings": "node.server.settings", "SharedState": "node.state",
}

__all__ = [
    "RateLimit", "Settings", "SharedState", "StateDep", "client_ip", "create_app", "gossip_router", "router",
    "running_node", "shared_state", "shared_state_lifespan",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'node' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once imported, an attribute like any other
    return value
