"""Rate limits: the rule's text, the decision (Hypothesis), resets by marker under any order
of merges (Hypothesis), the dependency's answers and headers (in-process), and one count
across `uvicorn --workers 4` for both our dependency and an unchanged slowapi limiter on the
`limits` storage (real processes; the storage itself: tests/node/test_limits_storage.py)."""

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
from gossip.clock import Timestamp
from gossip.config import Config
from gossip.counters import Counting, WindowCount
from gossip.errors import CallerError
from gossip.protocol import GossipProtocol
from gossip.ratelimit import CLEAR, RESET, Rate, admit, clear_ttl, decide, epoch_name, parse_rate
from gossip.store import Entry
from node import RateLimit, shared_state_lifespan
from node.server.settings import Settings
from node.tools.testing import UvicornWorkers, live_members
from tests.inprocess import serving
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "rate"), [
    ("100/minute", Rate(100, 60)), ("500/10 seconds", Rate(500, 10)), ("5 per second", Rate(5, 1)),
    ("1000/day", Rate(1000, 86_400)), (" 2 / 1.5 hours ", Rate(2, 5400)), ("3/Minutes", Rate(3, 60)),
])
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "100/fortnight", "-1/minute", "0/second", "ten/minute",
                                  "100/0 seconds", "1/minute/extra"])
def test_bad_rates_are_refused_by_name(text: str) -> None:
    with pytest.raises(CallerError, match="rate"):
        parse_rate(text)


def test_bad_dependency_arguments_are_refused() -> None:
    calls: list[Callable[[], object]] = [
        lambda: RateLimit("1/fortnight"), lambda: RateLimit("5/second", cost=0),
        lambda: RateLimit("5/second", cost=6), lambda: RateLimit("5/second", name='a"b'),
    ]
    for bad in calls:
        with pytest.raises(CallerError):
            bad()


def counting() -> Counting:
    return Counting(GossipProtocol(Config.for_tests(), "n1", "http://n1", random.Random(1), 0))


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 20), period_ms=st.sampled_from([1000, 2500, 60_000]),
       gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=120))
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


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 50), cost=st.integers(1, 80), current=st.integers(0, 60),
       previous=st.integers(0, 60), elapsed=st.integers(0, 999),
       whole=st.sampled_from([0, 1, 1000]))
def test_a_decision_never_fails_and_a_cost_above_the_limit_never_fits(
    limit: int, cost: int, current: int, previous: int, elapsed: int, whole: int
) -> None:
    scale = whole or 1
    seen = WindowCount(current * scale, previous * scale, 1000, elapsed)
    decision = decide(Rate(limit * scale, 1, whole), seen, cost * scale)
    if cost > limit:
        assert not decision.allowed and decision.reset >= 1
    weighted = previous * (1000 - elapsed) / 1000 + current
    if whole:  # the `limits` rule: the estimate rounded down to whole requests (in exact arithmetic)
        exact = (previous * (1000 - elapsed) + current * 1000) // 1000
        assert decision.allowed == (exact + cost <= limit)
    else:
        assert decision.allowed == (weighted + cost <= limit) or abs(weighted + cost - limit) < 1e-9


def protocol(name: str) -> GossipProtocol:
    return GossipProtocol(Config.for_tests(), name, f"http://{name}", random.Random(name), 0)


def live(p: GossipProtocol, now: int) -> Callable[[str], Entry | None]:
    return lambda key: p.read(key, now)


reset_ops = st.lists(st.tuples(st.sampled_from(["hit", "hit", "hit", "reset", "clear", "deliver", "flush"]),
                               st.integers(0, 2), st.sampled_from(["a", "b"]), st.booleans()),
                     max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops=reset_ops, seed=st.integers(0, 2**32 - 1))
def test_resets_by_marker_count_the_same_everywhere_whatever_the_merges(
    ops: list[tuple[str, int, str, bool]], seed: int
) -> None:
    """Three nodes hit two limits, reset them all or clear one, and pass some of what they
    wrote to each other as they go (deferred counts written at random flushes). Then every
    entry ever written reaches every node, in a random order with duplicates: every node
    then counts the same for each limit, exactly the hits made by nodes that knew its newest
    marker; a hit counted before that marker never counts, whenever it arrived."""
    rng, length, now = random.Random(seed), 86_400_000, 1_000
    nodes = [protocol(f"n{i}") for i in range(3)]
    countings = [Counting(p) for p in nodes]
    written: list[Entry] = []
    hits: list[tuple[str, Timestamp | None]] = []  # each hit's limit, and the newest marker its node knew
    markers: dict[str, list[Timestamp]] = {"a": [], "b": []}  # every marker written, by the limits it resets

    def newest_known(p: GossipProtocol, name: str) -> Timestamp | None:
        known = [e.ts for key in (RESET, CLEAR + name) if (e := p.read(key, now)) is not None]
        return max(known, default=None)

    def collect(p: GossipProtocol) -> None:
        written.extend(e for e in p.store.entries() if e.origin == p.writer and e not in written)

    for op, i, name, defer in ops:
        now += 7
        p = nodes[i]
        if op == "hit":
            countings[i].add_in_window(epoch_name(name, live(p, now)), length, 1, now, defer)
            hits.append((name, newest_known(p, name)))
        elif op == "reset":
            ts = p.write(RESET, now, now).ts
            markers["a"].append(ts)
            markers["b"].append(ts)
        elif op == "clear":
            markers[name].append(p.write(CLEAR + name, now, now, clear_ttl(length)).ts)
        elif op == "flush":
            countings[i].flush(now)
        else:  # some of what has been written so far reaches node i
            for entry in rng.sample(written, len(written) // 2):
                p.store.merge(entry)
        collect(p)
    for c in countings:
        c.flush(now)
    for p in nodes:
        collect(p)
    finals = []
    for p, c in zip(nodes, countings, strict=True):
        deliveries = written + [rng.choice(written) for _ in range(len(written) // 2)] if written else []
        rng.shuffle(deliveries)
        for entry in deliveries:
            p.store.merge(entry)
        counters = {name: epoch_name(name, live(p, now)) for name in "ab"}
        finals.append({name: (n, c.window(n, length, now).current) for name, n in counters.items()})
    assert finals[0] == finals[1] == finals[2]
    for name, (_, total) in finals[0].items():
        newest = max(markers[name], default=None)
        assert total == sum(1 for hit in hits if hit == (name, newest)), (name, newest, hits)


def limited_app() -> FastAPI:
    app = FastAPI(lifespan=shared_state_lifespan(Settings(node_id="solo", config=Config.for_tests()),
                                                 own_listener=False))

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
