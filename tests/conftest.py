from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

pytest_plugins = ["node.tools.pytest_plugin"]
