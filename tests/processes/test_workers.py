"""`uvicorn --workers N` of a user's app: every worker is a node, and every worker
answers with the same shared state (real processes, real HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.tools.testing import UvicornWorkers, live_members

ROOT = Path(__file__).resolve().parents[2]
APP = "examples.pid_app:app"


def fresh_get(url: str) -> dict[str, object]:
    """GET /get on a new connection, so the kernel may hand it to any worker."""
    with httpx.Client(timeout=5, headers={"connection": "close"}) as client:
        return client.get(url + "/get").json()  # type: ignore[no-any-return]


def wait_everywhere(workers: UvicornWorkers, value: str, timeout: float = 10.0) -> None:
    """Poll each worker's own gossip listener until all hold `value`."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        pending = dict(workers.workers())
        while pending:
            for pid, address in list(pending.items()):
                r = client.get(address + "/get", params={"key": "demo"})
                if r.status_code == 200 and r.json()["value"]["value"] == value:
                    del pending[pid]
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"workers {sorted(pending)} lack {value!r} after {timeout}s")
            time.sleep(0.005)


@pytest.fixture
def four_workers() -> Iterator[UvicornWorkers]:
    with UvicornWorkers(APP, workers=4, cwd=ROOT) as w:
        yield w


def test_every_worker_answers_with_the_shared_value(four_workers: UvicornWorkers) -> None:
    url = four_workers.url
    assert httpx.post(url + "/set", params={"value": "first"}).status_code == 200
    wait_everywhere(four_workers, "first")
    answers = [fresh_get(url) for _ in range(200)]
    assert all(a["shared"]["value"] == "first" for a in answers)  # type: ignore[index]
    pids = {a["pid"] for a in answers}
    for _ in range(800):  # the kernel's accept() spreading is uneven; ask until all answer
        if len(pids) == 4:
            break
        answer = fresh_get(url)
        assert answer["shared"]["value"] == "first"  # type: ignore[index]
        pids.add(answer["pid"])
    assert pids == set(four_workers.workers()), "not every worker answered"

    for n in range(50):  # change it 50 times: every worker sees every change
        with httpx.Client(headers={"connection": "close"}) as client:
            assert client.post(url + "/set", params={"value": f"v{n}"}).status_code == 200
        wait_everywhere(four_workers, f"v{n}", timeout=5)
        assert fresh_get(url)["shared"]["value"] == f"v{n}"  # type: ignore[index]


def test_two_hosts_joined_by_a_seed(tmp_path: Path) -> None:
    """Two uvicorn commands with separate host directories, so only the seed joins them."""
    cluster = {"GOSSIP_CLUSTER_ID": f"hosts-{os.getpid()}"}
    with UvicornWorkers(APP, 2, env=cluster, discovery_dir=tmp_path / "a", cwd=ROOT) as a:
        seed = next(iter(a.workers().values()))
        joined = {**cluster, "GOSSIP_SEEDS": seed}
        b = UvicornWorkers(APP, 2, env=joined, discovery_dir=tmp_path / "b", cwd=ROOT)
        with b:
            addresses = [*a.workers().values(), *b.workers().values()]
            with httpx.Client(timeout=5) as client:
                deadline = time.monotonic() + 20
                while not all(live_members(client, x) == 4 for x in addresses):
                    assert time.monotonic() < deadline, "the two hosts did not join"
                    time.sleep(0.05)
            httpx.post(a.url + "/set", params={"value": "from-a"})
            for w in (a, b):
                wait_everywhere(w, "from-a")
            httpx.post(b.url + "/set", params={"value": "from-b"})
            for w in (a, b):
                wait_everywhere(w, "from-b")
            assert fresh_get(a.url)["shared"]["value"] == "from-b"  # type: ignore[index]


def test_killed_worker_is_replaced_and_catches_up(four_workers: UvicornWorkers) -> None:
    url = four_workers.url
    httpx.post(url + "/set", params={"value": "before"})
    wait_everywhere(four_workers, "before")
    before = four_workers.workers()
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # the supervisor starts a replacement, which registers itself
        now = four_workers.workers()
        if len(now) == 4 and victim not in now:
            break
        assert time.monotonic() < deadline, f"no replacement worker: {now}"
        time.sleep(0.05)
    wait_everywhere(four_workers, "before")  # the newcomer caught up; nobody lost it
    httpx.post(url + "/set", params={"value": "after"})
    wait_everywhere(four_workers, "after")


def test_gossip_listener_serves_only_configured_addresses() -> None:
    with UvicornWorkers(APP, 1, env={"GOSSIP_ALLOW": "127.0.0.1/32"}, cwd=ROOT) as w:
        address = next(iter(w.workers().values()))
        port = int(address.rsplit(":", 1)[1])
        # bound to 127.0.0.1 only: another loopback address finds nothing listening
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.2", port)) != 0
        # a peer outside the allowed networks is refused, and nothing changes
        before = httpx.get(address + "/digest").json()
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport) as outsider:
            r = outsider.post(address + "/gossip", content=b"{}")
        assert r.status_code == 403 and "not allowed" in r.text
        assert httpx.get(address + "/digest").json() == before
        assert httpx.post(address + "/set", json={"key": "k", "value": 1}).status_code in (404, 405)
