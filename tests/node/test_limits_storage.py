"""The `limits` storage (node/web/limits_storage.py) with a real node running in this process:
`limits`' strategies on it, costs above the limit and fractional ones, the sliding estimate
rounded as `limits` rounds it, fleet-wide reset() and clear(), the loud failures (no node,
a stopped one, another app's, a float clock), the app's lifespan binding its limiter, and
slowapi apps answering on it as they answer on `memory://`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES, FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded

import node.web.limits_storage
from gossip.config import Config
from gossip.counters import window_slot
from node import shared_state_lifespan
from node.server.settings import Settings
from node.state import SharedState, wall_ms
from node.tools.testing import node_in_thread
from node.web.limits_storage import GossipStorage, GossipStorageError, counting_on
from tests.inprocess import serving
from tests.polling import wait_until

STRATEGY_NAMES = ["fixed-window", "sliding-window-counter"]


@pytest.fixture
def state() -> Iterator[SharedState]:
    with node_in_thread() as running:
        yield running


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_the_strategies_count_in_the_shared_state(state: SharedState, strategy: str) -> None:
    """The limit holds, the stats read back, and the counts are the shared state's (in
    thousandths of a request, under the limit's key)."""
    limiter = STRATEGIES[strategy](GossipStorage(state=state))
    item = RateLimitItemPerDay(3)  # (a day: no window boundary falls inside the test)
    assert [limiter.hit(item, "alice") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "bob")
    assert limiter.get_window_stats(item, "alice").remaining == 0
    assert limiter.get_window_stats(item, "bob").remaining == 2
    counted = 4 if strategy == "fixed-window" else 3  # (the fixed window counts refused hits too)
    assert state.window_count(item.key_for("alice"), 86_400).current == counted * 1000
    # The counts were taken deferred (this thread is not the node's): they reach the slots'
    # entries, which gossip spreads, within a few milliseconds.
    slot = window_slot(item.key_for("alice"), 86_400_000, wall_ms() // 86_400_000, state.protocol.writer)
    def written() -> object:
        entry = state.entry(slot)
        return entry and entry.value

    wait_until(lambda: written() == counted * 1000, timeout=5, what="the counts written", detail=written)


def test_a_limits_key_hands_its_limit_on_and_any_other_key_none(
    state: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed window's hits past its limit need not spread at once (SharedState.incr_window's
    quiet_from): the storage reads the limit from the key `limits` builds; other keys have none."""
    told: list[object] = []
    real = state.incr_window

    def incr_window(*args: Any) -> Any:
        told.append(args[3])
        return real(*args)

    monkeypatch.setattr(state, "incr_window", incr_window)
    storage = GossipStorage(state=state)
    assert FixedWindowRateLimiter(storage).hit(RateLimitItemPerDay(3), "alice")
    storage.incr("a key of our own", 10)
    assert told == [3 * 1000, None]


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_a_cost_above_the_limit_is_refused(state: SharedState, strategy: str) -> None:
    limiter = STRATEGIES[strategy](GossipStorage(state=state))
    item = RateLimitItemPerMinute(10)
    assert not limiter.hit(item, "k1", cost=11)
    assert limiter.hit(item, "k2", cost=10) and not limiter.hit(item, "k2")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_fractional_costs_count_as_they_are(state: SharedState, strategy: str) -> None:
    """Six hits of 7.5 fit in 50 (45), the seventh does not; 0.25 four times is one."""
    limiter = STRATEGIES[strategy](GossipStorage(state=state))
    item = RateLimitItemPerDay(50)
    assert [limiter.hit(item, "a", cost=7.5) for _ in range(7)] == [True] * 6 + [False]
    counted = 52.5 if strategy == "fixed-window" else 45  # (the fixed window counts refused hits too)
    assert limiter.get_window_stats(item, "a").remaining == max(0, 50 - counted)
    quarter = RateLimitItemPerDay(1)
    assert [limiter.hit(quarter, "b", cost=0.25) for _ in range(5)] == [True] * 4 + [False]


def test_the_sliding_estimate_is_rounded_down_as_limits_rounds_it(
    state: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3 hits in the previous window and a third of the current one gone, the estimate
    is 2 exactly (never 1.999...): `remaining` says 8 of 10, and exactly 8 more hits are
    admitted; at any point `remaining` says whether the next hit is admitted."""
    now = [3_600_000 * 500_000]  # (a multiple of every window length used)
    monkeypatch.setattr("node.server.local_state.wall_ms", lambda: now[0])
    monkeypatch.setattr("node.web.limits_storage.time.time", lambda: now[0] / 1000)
    limiter = SlidingWindowCounterRateLimiter(GossipStorage(state=state))
    item = RateLimitItemPerMinute(10)
    assert all(limiter.hit(item, "k") for _ in range(3))
    now[0] += 60_000 + 20_000  # the next window, a third through
    for _ in range(12):
        remaining = limiter.get_window_stats(item, "k").remaining
        assert limiter.hit(item, "k") == (remaining > 0), remaining
    assert state.window_count(item.key_for("k"), 60).current == 8_000


def test_reset_and_clear_start_the_counts_afresh(state: SharedState) -> None:
    storage = GossipStorage(state=state)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerDay(2)
    for who in ("a", "b"):
        assert [limiter.hit(item, who) for _ in range(3)] == [True, True, False]
    limiter.clear(item, "a")
    assert limiter.hit(item, "a") and not limiter.hit(item, "b")  # only a's limit is reset
    assert storage.reset() == 2  # both limits had counts
    assert limiter.get_window_stats(item, "b").remaining == 2
    assert [limiter.hit(item, "b") for _ in range(3)] == [True, True, False]
    sliding = SlidingWindowCounterRateLimiter(storage)
    assert [sliding.hit(item, "c") for _ in range(3)] == [True, True, False]
    sliding.clear(item, "c")
    assert sliding.get_window_stats(item, "c").remaining == 2 and sliding.hit(item, "c")


def test_a_storage_with_no_node_of_its_own_fails_loudly(state: SharedState) -> None:
    """No node given and no lifespan: an error saying what to do, even though a node (here,
    another app's) runs in the process, and nothing is counted on that node."""
    storage = storage_from_string(node.web.limits_storage.URI)
    limiter = FixedWindowRateLimiter(storage)
    with pytest.raises(GossipStorageError, match="bound to no node.*with TestClient"):
        limiter.hit(RateLimitItemPerDay(5), "k")
    assert not storage.check()
    assert state.window_names() == []
    with counting_on(state):
        assert limiter.hit(RateLimitItemPerDay(5), "k") and storage.check()
    assert len(state.window_names()) == 1


def test_a_stopped_node_and_a_float_clock_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    with node_in_thread() as running:
        storage = GossipStorage(state=running)
        monkeypatch.setattr("time.time_ns", lambda: float(time.time() * 1e9))
        with pytest.raises(GossipStorageError, match="time_ns.*int"):
            storage.incr("k/1/1/minute", 60)
        monkeypatch.undo()
        assert storage.incr("k/1/1/minute", 60) == 1
    with pytest.raises(GossipStorageError, match="not running"):
        storage.incr("k/1/1/minute", 60)


def slowapi_app(storage_uri: str, lifespan: bool = False, **options: Any) -> tuple[FastAPI, Limiter]:
    limiter = Limiter(key_func=lambda request: "client", storage_uri=storage_uri, **options)
    settings = Settings(node_id="app-node", discovery_dir="off", config=Config.for_tests())
    app = FastAPI(lifespan=shared_state_lifespan(settings, own_listener=False) if lifespan else None)
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

    @app.get("/a")
    @limiter.limit("3/day")
    async def a(request: Request) -> PlainTextResponse:
        return PlainTextResponse("a")

    return app, limiter


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """A client of the app that does not run its lifespan (as `TestClient(app)` not entered)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


@pytest.mark.anyio
async def test_the_apps_lifespan_binds_its_limiter(state: SharedState) -> None:
    """The app counts on its own node while its lifespan runs, never on the other node
    running in the process; without the lifespan, it fails and says why."""
    app, _ = slowapi_app(node.web.limits_storage.URI, lifespan=True)
    async with serving(app) as client:
        assert [(await client.get("/a")).status_code for _ in range(4)] == [200, 200, 200, 429]
        own: SharedState = app.state.shared_state
        assert len(own.window_names()) == 1 and state.window_names() == []
    async with client_of(app) as client:  # the lifespan is over: the storage is unbound
        with pytest.raises(GossipStorageError, match="bound to no node.*with TestClient"):
            await client.get("/a")
    assert state.window_names() == []


# -- slowapi on both storages --------------------------------------------------------------

Scenario = Callable[[Limiter, FastAPI], None]


def _decorated(limiter: Limiter, app: FastAPI) -> None:
    @app.get("/t")
    @limiter.limit("5/day")
    async def t(request: Request) -> PlainTextResponse:
        return PlainTextResponse("t")

    @app.get("/sync")
    @limiter.limit("2/day")
    def sync(request: Request) -> PlainTextResponse:
        return PlainTextResponse("s")


def _costs(limiter: Limiter, app: FastAPI) -> None:
    @app.get("/t")
    @limiter.limit("50/day", cost=10)
    async def t(request: Request) -> PlainTextResponse:
        return PlainTextResponse("t")

    @app.get("/sync")
    @limiter.limit("50/day", cost=lambda request: int(request.headers.get("foo", "5")) * 1.5)
    async def sync(request: Request) -> PlainTextResponse:
        return PlainTextResponse("s")

    @app.get("/too-much")
    @limiter.limit("10/day", cost=11)
    async def too_much(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")


def _shared_and_exempt(limiter: Limiter, app: FastAPI) -> None:
    shared = limiter.shared_limit("3/day", "scope")

    @app.get("/t")
    @shared
    async def t(request: Request) -> PlainTextResponse:
        return PlainTextResponse("t")

    @app.get("/sync")
    @shared
    async def sync(request: Request) -> PlainTextResponse:
        return PlainTextResponse("s")

    @app.get("/too-much")
    @limiter.limit("1/day", exempt_when=lambda: True)
    async def exempt(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize("scenario", [_decorated, _costs, _shared_and_exempt], ids=lambda s: s.__name__)
async def test_slowapi_answers_on_it_as_on_memory(
    state: SharedState, scenario: Scenario, strategy: str
) -> None:
    """The same app on `memory://` and on `gossip://` answers every request alike: status,
    remaining, and after `limiter.reset()` (as slowapi's docs do between tests) afresh. (A
    whole count reads as an int here, where memory keeps a float once a cost was one.)"""

    async def run(uri: str) -> list[tuple[str, int, float | None]]:
        limiter = Limiter(key_func=lambda request: "client", storage_uri=uri, strategy=strategy,
                          headers_enabled=True)
        app = FastAPI()
        app.state.limiter = limiter
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]
        scenario(limiter, app)
        seen = []
        async with client_of(app) as client:
            for round_ in range(2):
                for path in ["/t"] * 7 + ["/sync"] * 8 + ["/too-much"] * 2:
                    answer = await client.get(path)
                    assert answer.status_code in (200, 404, 429), answer.text
                    remaining = answer.headers.get("X-RateLimit-Remaining")  # ("35" here, "35.0" there)
                    seen.append((path, answer.status_code, None if remaining is None else float(remaining)))
                if round_ == 0:
                    limiter.reset()
        return seen

    with counting_on(state):
        on_gossip = await run(node.web.limits_storage.URI)
    assert on_gossip == await run("memory://")
    assert {status for _, status, _ in on_gossip} >= {200, 429}
