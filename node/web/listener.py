"""The gossip listener of a node embedded in an app: under `uvicorn --workers N` a
request to the shared port lands on a random worker, so each worker also serves
gossip (and read-only status) on an address of its own."""

from __future__ import annotations

import contextlib
import socket

import anyio
import uvicorn
from anyio.abc import TaskStatus
from fastapi import FastAPI
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from node.server.settings import Settings
from node.state import SharedState
from node.web import openapi
from node.web.admin_api import admin_router
from node.web.api import read_router
from node.web.dashboard import dashboard_router
from node.web.hotpaths import HotPaths
from node.web.metrics_api import router as metrics_router
from node.web.peer_api import gossip_router
from node.web.recipes_api import recipes_router


def bind(settings: Settings) -> socket.socket:
    """A listening socket on settings.host at `port`, or at the first free port of
    [port, port_max]."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    last = settings.port_max or settings.port
    for port in range(settings.port, last + 1):
        # proto=IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
        # so; with proto 0 every small answer on a kept-alive connection waited ~40 ms for
        # the peer's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((settings.host, port))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise OSError(f"no free port for the gossip listener on {settings.host} in {settings.port}-{last}")


class _QuietProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """The usual HTTP protocol minus access logging: gossip traffic stays out of the
    app's access log, whose settings belong to the app."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


def listener_app(state: SharedState) -> FastAPI:
    app = FastAPI(title=f"gossip listener {state.id}", docs_url=None, redoc_url=None)
    app.state.shared_state = state
    app.include_router(read_router)
    app.include_router(gossip_router)
    app.include_router(admin_router)
    app.include_router(recipes_router)
    app.include_router(dashboard_router)  # GET /ui: this worker's own view
    app.include_router(metrics_router)  # each worker's own figures
    openapi.install(app)  # its /openapi.json states what this node asks of callers
    app.add_exception_handler(405, openapi.method_not_allowed)
    app.add_middleware(HotPaths, routes=[("GET", "/get"), ("POST", "/gossip")])  # (its routers have no /set)
    return app


async def serve(
    state: SharedState, sock: socket.socket, *, task_status: TaskStatus[uvicorn.Server]
) -> None:
    """Serve the listener on `sock` until server.should_exit is set."""
    # log_config and log_level None: leave the app's logging exactly as configured.
    config = uvicorn.Config(
        listener_app(state), http=_QuietProtocol, lifespan="off", log_config=None,
        log_level=None, timeout_graceful_shutdown=1, **state.settings.server_tls(),  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    # The app's own server owns the process's signals; this one must not take them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.005)
        task_status.started(server)
