"""What a node offers beyond get and set, wired to its state: change streams
(node.watch), a service registry (node.registry) and run-once jobs (node.jobs), with the
background tasks they need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.background import TaskHost
from node.jobs import Jobs
from node.registry import ServiceRegistry
from node.watch import ChangeFeed

if TYPE_CHECKING:
    from node.state import SharedState


class Recipes:
    def __init__(self, state: SharedState) -> None:
        self.tasks = TaskHost()  # run by SharedState.run, as long as the gossip loops
        self.changes = ChangeFeed(state.protocol)
        self.registry = ServiceRegistry(state, self.tasks)
        self.jobs = Jobs(state, self.tasks)
