"""The standalone node's WebSocket protocol for uvicorn, loaded on the first upgrade request.

A node has no WebSocket route, yet uvicorn's default (`ws="auto"`) imports a WebSocket
library when the server starts, for an upgrade request that may never come (about 0.5 MB
a node carries). `websocket_protocol()` gives uvicorn a stand-in that imports the very
protocol "auto" would have chosen when the first upgrade request arrives, so such a
request is answered exactly as before (the app turns it down: no route takes it)."""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from typing import Any, Literal


class _OnFirstUpgrade(asyncio.Protocol):
    """Called by uvicorn as its WebSocket protocol class: builds uvicorn's "auto" choice."""

    def __new__(cls, *args: Any, **kwargs: Any) -> asyncio.Protocol:  # type: ignore[misc]
        from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

        assert AutoWebSocketsProtocol is not None  # (websockets is installed: see below)
        return AutoWebSocketsProtocol(*args, **kwargs)


def websocket_protocol() -> type[asyncio.Protocol] | Literal["auto"]:
    """uvicorn's `ws` for the standalone node: the stand-in when the library uvicorn's
    "auto" tries first is installed (it is, with uvicorn[standard]), else "auto" itself."""
    return _OnFirstUpgrade if find_spec("websockets") is not None else "auto"
