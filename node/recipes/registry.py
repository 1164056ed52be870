"""A service registry on shared state: which instances of a service are up, fleet-wide.

`state.register("api", "http://10.0.0.5:8000")` writes this node's instance under
`_gossip/service/api/<node id>` with a TTL, and the node rewrites it every ttl/3 while it
runs. `state.instances("api")` lists the live ones, leaving out those of nodes this node
sees as dead or left. So an instance disappears when its node leaves (it deletes its
instances and sends the deletes to its peers before saying goodbye), when its node is
found dead (failure detection: within 5 s on a few nodes with direct probes every second,
R23; about 18 gossip intervals with phi alone), or at the latest when its TTL lapses. A
node seen suspect keeps its instances listed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import anyio

from gossip.errors import GossipError, InvalidKey, InvalidValue
from gossip.namespaces import RESERVED
from gossip.store import JSON
from node.recipes.background import TaskHost
from node.server.local_state import LocalState
from node.server.pump import Pump
from node.server.views import Views

log = logging.getLogger("gossip.node")

PREFIX = RESERVED + "service/"
DEFAULT_TTL = 30.0


@dataclass(frozen=True)
class Instance:
    service: str
    node: str  # id of the node that registered it
    url: str
    meta: JSON = None


@dataclass(frozen=True)
class _Registration:
    service: str
    url: str
    meta: JSON
    ttl: float


def _check_service(service: object) -> str:
    if not isinstance(service, str) or not service or "/" in service:
        raise InvalidKey(f"service name must be a non-empty string without '/', got {service!r}")
    return service


class ServiceRegistry:
    def __init__(self, local: LocalState, views: Views, pump: Pump, tasks: TaskHost) -> None:
        """`local`: where the instances are written and read; `views`: who is gone;
        `pump`: what sends the withdrawals at once."""
        self._local, self._views, self._pump, self._tasks = local, views, pump, tasks
        self._mine: dict[str, _Registration] = {}  # by service: what this node keeps alive

    def key(self, service: str) -> str:
        return f"{PREFIX}{service}/{self._local.id}"

    def register(self, service: str, url: str, meta: JSON = None, ttl: float = DEFAULT_TTL) -> Instance:
        """Register (or re-register, replacing) this node's instance of `service`."""
        _check_service(service)
        if not isinstance(url, str) or not url:
            raise InvalidValue(f"url must be a non-empty string, got {url!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not (ttl > 0 and math.isfinite(ttl)):
            raise InvalidValue(f"ttl must be a positive number of seconds, got {ttl!r}")
        registration = _Registration(service, url, meta, float(ttl))
        self._write(registration)  # checks the key and value: raises before anything is kept
        self._mine[service] = registration
        self._tasks.start(lambda: self._keep_alive(registration))
        return Instance(service, self._local.id, url, meta)

    def unregister(self, service: str) -> None:
        """Withdraw this node's instance of `service` (no error if there is none)."""
        _check_service(service)
        if self._mine.pop(service, None) is not None:
            self._local.delete_reserved(self.key(service))

    def instances(self, service: str) -> list[Instance]:
        """The live instances of `service`, by node id, except those of nodes this node
        sees as dead or left."""
        prefix = f"{PREFIX}{_check_service(service)}/"
        gone = self._views.departed()
        found = []
        for key, entry in self._local.live().items():
            if key.startswith(prefix) and entry.node not in gone and isinstance(entry.value, dict):
                url = entry.value.get("url")
                if isinstance(url, str):
                    found.append(Instance(service, entry.node, url, entry.value.get("meta")))
        return sorted(found, key=lambda i: i.node)

    def _write(self, r: _Registration) -> None:
        value = {"url": r.url, "meta": r.meta, "node": self._local.id}
        self._local.write_reserved(self.key(r.service), value, ttl=r.ttl)

    async def _keep_alive(self, registration: _Registration) -> None:
        while True:
            await anyio.sleep(registration.ttl / 3)
            if self._mine.get(registration.service) is not registration:
                return  # unregistered, or replaced by a newer registration
            try:
                self._write(registration)
            except GossipError as exc:
                log.warning("%s: could not refresh the instance of %r: %s", self._local.id,
                            registration.service, exc)

    async def withdraw(self) -> None:
        """Before a clean leave: delete our instances and send the deletes to every live
        peer directly, so they vanish there at once rather than at the next round."""
        services, self._mine = list(self._mine), {}
        if not services:
            return
        for service in services:
            self._local.delete_reserved(self.key(service))
        await self._pump.spread_now()
