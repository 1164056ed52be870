"""The FastAPI node: HTTP routes, background gossip loops, and the HTTP transport."""

from node.api import StateDep, gossip_router, router, shared_state
from node.app import create_app, running_node, shared_state_lifespan
from node.ratelimit import RateLimit, client_ip
from node.settings import Settings
from node.state import SharedState

__all__ = [
    "RateLimit", "Settings", "SharedState", "StateDep", "client_ip", "create_app", "gossip_router", "router",
    "running_node", "shared_state", "shared_state_lifespan",
]  # fmt: skip
