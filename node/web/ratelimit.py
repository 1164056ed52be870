"""A fleet-wide rate limit as a FastAPI dependency:

    @app.get("/search", dependencies=[Depends(RateLimit("100/minute"))])

counts each client's requests in a windowed counter shared by every worker and host, and
answers 429 with `Retry-After` past the limit. A request costs a local read and a local
increment, never a network round trip; the price is that other nodes' admissions are seen
after the propagation delay, so the fleet may admit a little more than the limit (the
overshoot `make bench` measures).

Every answer carries the IETF RateLimit header fields (the httpapi working group's draft,
revision 08 and later): `RateLimit-Policy: "<name>";q=<limit>;w=<seconds>` and
`RateLimit: "<name>";r=<remaining>;t=<seconds until there is room again>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fastapi import HTTPException, Request, Response

from gossip.errors import InvalidValue
from gossip.ratelimit import Decision, Rate, parse_rate
from node.web.http_basics import state_of


def client_ip(request: Request) -> str:
    """The peer address of the connection (behind a proxy, pass a key that reads the
    forwarded address your proxy sets, and trust only that proxy)."""
    return request.client.host if request.client else "unknown"


class RateLimit:
    """`Depends(RateLimit("100/minute", key=client_ip))`: at most `rate` requests per client
    key across the whole cluster, by the sliding-window estimate. `name` tells limits apart
    (default: the route's method and path); `cost` is what one request counts for."""

    def __init__(
        self, rate: str, key: Callable[[Request], str] = client_ip, name: str | None = None, cost: int = 1
    ) -> None:
        self.rate: Rate = parse_rate(rate)
        if type(cost) is not int or not 1 <= cost <= self.rate.limit:
            raise InvalidValue(f"cost must be a whole number from 1 to the limit {self.rate.limit}, "
                               f"got {cost!r}")
        if name is not None and (not name or '"' in name or "\\" in name):
            raise InvalidValue(f"name must be non-empty, without quotes or backslashes, got {name!r}")
        self.key, self.name, self.cost = key, name, cost

    async def __call__(self, request: Request, response: Response) -> None:
        state = state_of(request)
        name = self.name or _route_name(request)
        counter = f"ratelimit:{name}:{self.key(request)}"
        decision = state.admit(counter, self.rate, self.cost)
        if decision.allowed:
            response.headers.update(self.headers(name, decision))
            return
        headers = {**self.headers(name, decision), "Retry-After": str(decision.reset)}
        raise HTTPException(429, f"rate limit of {self.rate.limit} per {self.rate.period:g} s exceeded; "
                                 f"retry in {decision.reset} s", headers=headers)

    def headers(self, name: str, decision: Decision) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{name}";q={self.rate.limit};w={math.ceil(self.rate.period)}',
            "RateLimit": f'"{name}";r={decision.remaining};t={decision.reset}',
        }


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return f"{request.method} {path}"
