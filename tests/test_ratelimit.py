"""Rate limits: the rule's text, the decision (Hypothesis), the dependency's answers and
headers (in-process), and one count across `uvicorn --workers 4` for both our dependency
and an unchanged slowapi limiter on the `limits` storage (real processes)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.rawhttp import Connection
from gossip.config import Config
from gossip.counters import Counting
from gossip.errors import CallerError
from gossip.protocol import GossipProtocol
from gossip.ratelimit import Rate, admit, parse_rate
from node import RateLimit, shared_state_lifespan
from node.settings import Settings
from node.testing import UvicornWorkers, live_members
from tests.inprocess import serving
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("text", "rate"), [
    ("100/minute", Rate(100, 60)), ("500/10 seconds", Rate(500, 10)), ("5 per second", Rate(5, 1)),
    ("1000/day", Rate(1000, 86_400)), (" 2 / 1.5 hours ", Rate(2, 5400)), ("3/Minutes", Rate(3, 60)),
])  # fmt: skip
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "100/fortnight", "-1/minute", "0/second", "ten/minute",
                                  "100/0 seconds", "1/minute/extra"])  # fmt: skip
def test_bad_rates_are_refused_by_name(text: str) -> None:
    with pytest.raises(CallerError, match="rate"):
        parse_rate(text)


def test_bad_dependency_arguments_are_refused() -> None:
    calls: list[Callable[[], object]] = [
        lambda: RateLimit("1/fortnight"), lambda: RateLimit("5/second", cost=0),
        lambda: RateLimit("5/second", cost=6), lambda: RateLimit("5/second", name='a"b'),
    ]  # fmt: skip
    for bad in calls:
        with pytest.raises(CallerError):
            bad()


def counting() -> Counting:
    return Counting(GossipProtocol(Config.for_tests(), "n1", "http://n1", random.Random(1), 0))


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 20), period_ms=st.sampled_from([1000, 2500, 60_000]),
       gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=120))  # fmt: skip
def test_one_node_never_admits_more_than_the_limit_in_a_window(
    limit: int, period_ms: int, gaps: list[int]
) -> None:
    """With every count seen at once (one node), no window ever holds more than `limit`
    admitted requests, and a refused request told to retry after t seconds is admitted
    then, if nothing else came."""
    c, rate, now = counting(), Rate(limit, period_ms / 1000), 1_000_000
    admitted: list[int] = []
    for gap in gaps:
        now += gap
        decision = admit(c, "k", rate, 1, now)
        if decision.allowed:
            admitted.append(now)
        else:
            assert decision.reset >= 1
            retry = admit(counting_copy := _replay(admitted, rate), "k", rate, 1, now + decision.reset * 1000)
            assert retry.allowed, (decision, admitted[-5:], counting_copy)
    for start in admitted:
        assert sum(1 for t in admitted if start // period_ms == t // period_ms) <= limit


def _replay(admitted: list[int], rate: Rate) -> Counting:
    """A fresh node that admitted exactly these requests."""
    c = counting()
    for t in admitted:
        c.add_in_window("k", round(rate.period * 1000), 1, t)
    return c


def limited_app() -> FastAPI:
    app = FastAPI(lifespan=shared_state_lifespan(Settings(node_id="solo", config=Config.for_tests()),
                                                 own_listener=False))  # fmt: skip

    @app.get("/search", dependencies=[Depends(RateLimit("3/minute", key=lambda r: r.headers["x-client"]))])
    async def search() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.mark.anyio
async def test_the_dependency_answers_429_with_retry_after_and_ratelimit_fields() -> None:
    async with serving(limited_app()) as client:
        answers = [await client.get("/search", headers={"x-client": "a"}) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[0].headers["ratelimit-policy"] == '"GET /search";q=3;w=60'
        assert [r.headers["ratelimit"].split(";")[1] for r in answers[:3]] == ["r=2", "r=1", "r=0"]
        refused = answers[3]
        assert 1 <= int(refused.headers["retry-after"]) <= 120
        assert "rate limit of 3 per 60 s exceeded" in refused.json()["detail"]
        assert (await client.get("/search", headers={"x-client": "b"})).status_code == 200  # another key


async def burst(port: int, path: str, count: int, concurrency: int = 32) -> list[int]:
    """`count` GETs, each on a fresh connection (so all workers take some): the statuses."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with semaphore:
            connection = Connection(port)
            try:
                return (await connection.request("GET", path))[0]
            finally:
                connection.close()

    return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.fixture(scope="module")
def limited_workers() -> Any:
    with UvicornWorkers("examples.ratelimit_app:app", workers=4, cwd=ROOT) as workers:
        yield workers


@pytest.mark.parametrize(("path", "limit"), [("/search", 50), ("/export", 50)])
def test_four_workers_count_one_limit(limited_workers: UvicornWorkers, path: str, limit: int) -> None:
    """Requests spread over 4 workers are counted together: the cluster admits the limit,
    plus at most what was admitted elsewhere during the propagation delay; 4 workers
    counting alone would admit 4 times the limit. Then every worker refuses."""
    wait_for_members(limited_workers, 4)
    statuses = asyncio.run(burst(limited_workers.port, path, 4 * limit, concurrency=4))
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}
    assert limit <= admitted < 2 * limit, f"{admitted} admitted for a limit of {limit}"
    deadline = time.monotonic() + 10
    while (later := asyncio.run(burst(limited_workers.port, path, 40))).count(200):
        assert time.monotonic() < deadline, f"still admitting after the limit: {later}"


def wait_for_members(workers: UvicornWorkers, count: int) -> None:
    with httpx.Client(timeout=2) as client:
        def met() -> bool:
            addresses = list(workers.workers().values())
            return len(addresses) == count and all(live_members(client, a) == count for a in addresses)

        wait_until(met, timeout=20, what="the workers to all meet")


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter"])
def test_the_limits_storage_counts_in_the_shared_state(strategy: str) -> None:
    """The `limits` package's own strategies on our storage: the limit holds, the stats
    read back, the counts are the shared state's, and what cannot be done says so."""
    from limits import RateLimitItemPerDay
    from limits.strategies import STRATEGIES

    from node.limits_storage import GossipStorage
    from node.state import SharedState

    state = SharedState(Settings(node_id="solo", config=Config.for_tests()), rng=random.Random(1))
    limiter = STRATEGIES[strategy](GossipStorage(state=state))
    item = RateLimitItemPerDay(3)  # (a day: no window boundary falls inside the test)
    assert [limiter.hit(item, "alice") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "bob")
    assert limiter.get_window_stats(item, "alice").remaining == 0
    assert limiter.get_window_stats(item, "bob").remaining == 2
    counted = 4 if strategy == "fixed-window" else 3  # (the fixed window counts refused hits too)
    assert state.window_count(item.key_for("alice"), 86_400).current == counted
    with pytest.raises(NotImplementedError, match="cannot be cleared"):
        limiter.clear(item, "alice")
