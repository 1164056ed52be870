"""GET /ui: a live dashboard of the node, one HTML page with its script and style inline
(node/web/dashboard.html, shipped as package data; no build step).

The page holds no data, so /ui itself needs no token: the script reads the node's own
API from the browser (/members, /stats, /digest, /health, /get, and /metrics and /watch
where the node serves them), with the api token when the node asks for one. The token
comes from `/ui?token=...` or a small form, and is kept in the tab's sessionStorage.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

dashboard_router = APIRouter(tags=["dashboard"])

# The page may run its own inline script and talk to this node only: a key or value that
# tried to smuggle markup in could not send the token anywhere else.
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",  # the token may be in the address
    "cache-control": "no-cache",
}


@cache
def page() -> str:
    return files("node.web").joinpath("dashboard.html").read_text(encoding="utf-8")


@dashboard_router.get("/ui", response_class=HTMLResponse, responses={200: {"description": "the page"}})
async def dashboard() -> HTMLResponse:
    """A live view of this node: members with status, phi and heartbeat age, keys and
    tombstones, each peer's recent traffic, and writes as they arrive."""
    return HTMLResponse(page(), headers=HEADERS)
