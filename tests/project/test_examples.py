"""The user-app example works as its docstring says, in process and under workers."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest

from node.tools.testing import UvicornWorkers
from tests.inprocess import serving

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def test_user_app_flags_and_busy_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOSSIP_DISCOVERY_DIR", str(tmp_path))
    monkeypatch.setenv("GOSSIP_CLUSTER_ID", "example-in-process")
    from examples.user_app import app

    async with serving(app) as client:
        assert (await client.put("/flags/dark-mode", json=True)).json() == {"dark-mode": True}
        assert (await client.get("/flags")).json() == {"dark-mode": True}
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.post, "/jobs?seconds=0.3")
            with anyio.fail_after(5):
                while not (await client.get("/busy")).json():
                    await anyio.sleep(0.01)
        assert (await client.get("/busy")).json() == []


def test_user_app_flags_agree_across_workers() -> None:
    with UvicornWorkers("examples.user_app:app", workers=2, cwd=ROOT) as w:
        assert httpx.put(w.url + "/flags/beta", json=True).status_code == 200
        deadline = time.monotonic() + 10
        with httpx.Client() as client:
            for address in w.workers().values():  # each worker's own view
                while client.get(address + "/get", params={"key": "flag:beta"}).status_code != 200:
                    assert time.monotonic() < deadline, f"{address} never saw the flag"
                    time.sleep(0.01)
