"""What a node offers beyond get and set, wired to its parts: change streams
(node.recipes.watch), a service registry (node.recipes.registry) and run-once jobs
(node.recipes.jobs), with the background tasks they need."""

from __future__ import annotations

from node.recipes.background import TaskHost
from node.recipes.jobs import Jobs
from node.recipes.registry import ServiceRegistry
from node.recipes.watch import ChangeFeed
from node.server.local_state import LocalState
from node.server.pump import Pump
from node.server.views import Views


class Recipes:
    def __init__(self, local: LocalState, views: Views, pump: Pump) -> None:
        self.tasks = TaskHost()  # run by SharedState.run, as long as the gossip loops
        self.changes = ChangeFeed(local.protocol)
        self.registry = ServiceRegistry(local, views, pump, self.tasks)
        self.jobs = Jobs(local, views, self.tasks)
