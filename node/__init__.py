"""The FastAPI node: HTTP routes, background gossip loops, and the HTTP transport."""

from node.api import router, shared_state
from node.app import create_app, shared_state_lifespan
from node.settings import Settings
from node.state import SharedState

__all__ = ["Settings", "SharedState", "create_app", "router", "shared_state", "shared_state_lifespan"]
