"""Which routes go where: the standalone node serves them all; an app embedding the shared
state mounts `router`, the client API (its own gossip route it mounts apart). Both are
`NodeRoutes`, which a path that is none of theirs passes at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from fastapi import APIRouter
from starlette._utils import get_route_path  # how every route reads the path it matches
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

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


class NodeRoutes(APIRouter):
    """The routes of `parts` as one router that turns down at once a path none of them
    takes.

    FastAPI from 0.16x includes routers lazily: for every request it tries each route of
    each router included before the one that matches, a couple of microseconds a route.
    A route of the user's declared after the node's twenty paid that twenty times on every
    request (the standalone node plus one route: about a third of the route's time in
    process). Here one regular expression of the routes' paths says whether any of them
    can take the path (the method aside); if not, no route is tried; if so, FastAPI
    matches as it always does. With `prefixed` (a router an app may include under a
    prefix) the test is whether the path ends like one of them. (Older FastAPI copies an
    included router's routes into the app, never asks this one, and matches as before.)
    The paths are read again whenever the number of routes changes (one added later)."""

    def __init__(self, parts: Iterable[APIRouter], prefixed: bool = False) -> None:
        super().__init__()
        for part in parts:  # each route carries its router's tags, dependencies and route class
            self.routes.extend(part.routes)
        self._prefixed = prefixed
        self._read = -1  # how many routes the test was made from
        self._paths: Callable[[str], object] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if len(self.routes) != self._read:
            self._paths, self._read = paths_pattern(self.routes, self._prefixed), len(self.routes)
        if scope["type"] == "http" and self._paths is not None and not self._paths(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def paths_pattern(routes: Iterable[BaseRoute], prefixed: bool) -> Callable[[str], object] | None:
    """A test true of every path one of `routes` takes (with `prefixed`, of every path that
    ends like one); None if a route is not a plain one, whose paths we do not read."""
    alternatives = []
    for route in routes:
        if not isinstance(route, Route):  # (FastAPI's routes are Starlette's Routes)
            return None
        pattern = route.path_regex.pattern.removeprefix("^").removesuffix("$")
        alternatives.append("(?:" + _NAMED_GROUP.sub("(?:", pattern) + ")")
    either = "|".join(alternatives)
    return re.compile(f"(?:{either})\\Z").search if prefixed else re.compile(either).fullmatch


# The client API and the dashboard (GET /ui), for an app of the user's.
router = NodeRoutes((read_router, write_router, dashboard_router, recipes_router), prefixed=True)
