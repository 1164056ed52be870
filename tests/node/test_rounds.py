"""The node's round loop: rounds come every interval whatever their exchanges take."""

from __future__ import annotations

import anyio
import httpx
import pytest

from gossip.config import Config
from node.server.settings import Settings
from node.web.app import running_node


class Silent(httpx.AsyncBaseTransport):
    """A peer whose packets are dropped: a request to it never gets an answer."""

    def __init__(self) -> None:
        self.asked = self.open = self.most_open = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await anyio.sleep_forever()  # until the node gives up (request_timeout)
        finally:
            self.open -= 1
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_rounds_go_on_while_an_exchange_hangs() -> None:
    silent = Silent()
    settings = Settings(node_id="n1", seeds=("http://silent:7946",), discovery_dir="off",
                        config=Config.for_tests())
    async with httpx.AsyncClient(transport=silent) as client, running_node(settings, client, False) as state:
        with anyio.fail_after(10):
            while state.protocol.stats.rounds < 20:
                await anyio.sleep(0.01)
        # One exchange in flight per peer: the rounds did not pile up requests to it.
        assert silent.asked >= 1 and silent.most_open == 1
