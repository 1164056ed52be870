"""Running a node: inside any FastAPI app (one node per worker, with a gossip listener
of its own) or as the standalone node, which is an app with the routes and nothing else."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING

import anyio
from fastapi import FastAPI

from gossip.errors import ConfigError
from gossip.version import __version__
from node.server.discovery import HostDirectory
from node.server.settings import Settings
from node.state import SharedState
from node.web import listener, openapi
from node.web.hotpaths import HotPaths
from node.web.lazy_websockets import websocket_protocol
from node.web.routes import NODE_ROUTERS, NodeRoutes

if TYPE_CHECKING:
    import httpx  # (an injected client's, for tests: a node on its own never loads httpx)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
log = logging.getLogger("gossip.node")


@asynccontextmanager
async def running_node(
    settings: Settings, client: httpx.AsyncClient | None = None, own_listener: bool = True
) -> AsyncIterator[SharedState]:
    """A node whose gossip loops run while the context is open. With `own_listener`
    it serves gossip on a port of its own and registers in the host directory so the
    other workers of this host find it; otherwise the caller's app serves /gossip."""
    sock, directory = None, None
    if own_listener:
        sock = listener.bind(settings)
        settings = settings.replace(port=sock.getsockname()[1])
        if (path := settings.discovery_path) is not None:
            directory = HostDirectory(path)
            settings = settings.replace(seeds=(*settings.seeds, *directory.peers()))
    dns = settings.dns_seeds()
    if dns.seeds:
        await dns.resolve()  # before the node decides whether it joins or founds a cluster
    state = SharedState(settings, client, dns=dns)
    try:
        async with anyio.create_task_group() as tg:
            server = await tg.start(listener.serve, state, sock) if sock else None
            async with anyio.create_task_group() as loops:
                await loops.start(state.run)
                if directory is not None:
                    directory.register(state.id, settings.address)
                    loops.start_soon(_watch, directory, state)
                log.info("%s: gossiping at %s, seeds %s (from DNS: %s)", state.id, settings.address,
                         settings.seeds, dns.addresses())
                try:
                    yield state
                finally:
                    if directory is not None:
                        directory.unregister()
                    with anyio.CancelScope(shield=True):
                        await state.leave()
                    loops.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await state.save()
            if server is not None:
                server.should_exit = True  # the listener drains and closes by itself
    finally:
        await state.aclose()
        if sock is not None:
            sock.close()


async def _watch(directory: HostDirectory, state: SharedState) -> None:
    """Keep taking workers that register after us (or at the same moment) as seeds."""
    while True:
        await anyio.sleep(state.config.gossip_interval)
        state.protocol.membership.add_seeds(directory.peers())


def shared_state_lifespan(
    settings: Settings | None = None, client: httpx.AsyncClient | None = None, own_listener: bool = True
) -> Lifespan:
    """A lifespan that gives any FastAPI app shared state: each process running the app
    (each `uvicorn --workers N` worker) becomes a node, serving gossip on a listener of its
    own (or, with own_listener=False, on the app's routes, as the standalone node does).
    The state is at `app.state.shared_state` and behind the `node.shared_state`
    dependency. Settings default to GOSSIP_* environment variables (`Settings.from_env`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_node(settings or Settings.from_env(), client, own_listener) as state:
            app.state.shared_state = state
            openapi.install(app, state.settings)  # the schema states this node's credentials and limits
            with _limiter_bound(app, state):
                yield

    return lifespan


def _limiter_bound(app: FastAPI, state: SharedState) -> AbstractContextManager[None]:
    """The app's `gossip://` limiter storage counts on its node while the app runs (only if
    node.web.limits_storage was imported: no such storage exists otherwise, and `limits` is an
    optional dependency)."""
    storages = sys.modules.get("node.web.limits_storage")
    return nullcontext() if storages is None else storages.app_limiter_bound(app, state)


def create_app(settings: Settings, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The standalone node: the client API and /gossip on one port."""
    app = FastAPI(
        title=f"gossip node {settings.id}",
        description="One node of a gossip cluster: local reads, writes spread by gossip.",
        version=__version__,
        lifespan=shared_state_lifespan(settings, client, own_listener=False),
    )
    openapi.install(app, settings)
    app.add_exception_handler(405, openapi.method_not_allowed)
    app.include_router(NodeRoutes(NODE_ROUTERS))  # one router, skipped at once by other paths
    app.add_middleware(HotPaths)
    return app


# Seconds a stopping node waits for open requests (a /watch stream never ends by itself)
# before it cuts them, says goodbye and saves: well inside a container's stop grace period.
SHUTDOWN_GRACE = 5

# A node applying a write load makes container objects by the thousand per second, most gone
# again within a request; CPython's default young-generation threshold (700) then ran a
# collection every few dozen entries applied: 7.7 % of a loaded node's time, about 1 % at this.
# (Only `gossip-node` sets it: an app embedding a node keeps its own process's settings.)
GC_YOUNG_THRESHOLD = 20_000


def main(argv: list[str] | None = None) -> None:
    """`gossip-node`: run one standalone node under uvicorn."""
    import uvicorn

    try:
        settings = Settings.parse(argv)
    except ConfigError as exc:
        sys.exit(f"gossip-node: {exc}")
    logging.basicConfig(level=settings.log_level.upper())
    app = create_app(settings)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.freeze()  # what start-up made lives as long as the process: no collection need scan it again
    uvicorn.run(
        app, host=settings.host, port=settings.port,
        log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE,
        ws=websocket_protocol(),  # the WebSocket library loads on the first upgrade request
        **settings.server_tls(),  # type: ignore[arg-type]
    )
