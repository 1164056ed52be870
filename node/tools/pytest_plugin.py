"""Pytest fixtures for testing apps that use shared state. Enable with
`pytest_plugins = ["node.pytest_plugin"]` in your conftest.py.

- `gossip_cluster`: an InProcessCluster of 3 nodes (async; mark the test `anyio`).
- `gossip_processes`: a LocalCluster of 3 real node processes on 127.0.0.1.

`@pytest.mark.gossip_nodes(5)` changes the size for one test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from node.tools.local_cluster import LocalCluster
from node.tools.testing import InProcessCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gossip_nodes(n): cluster size for the gossip fixtures")


def _size(request: pytest.FixtureRequest) -> int:
    marker = request.node.get_closest_marker("gossip_nodes")
    return int(marker.args[0]) if marker else 3


@pytest.fixture
async def gossip_cluster(request: pytest.FixtureRequest) -> AsyncIterator[InProcessCluster]:
    async with InProcessCluster(_size(request)) as cluster:
        yield cluster


@pytest.fixture
def gossip_processes(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    with LocalCluster(_size(request), interval=0.1) as cluster:
        yield cluster
