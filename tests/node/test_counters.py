"""Counters that merge: the algebra (Hypothesis, over any order, duplication and loss of
merges), the bad input they refuse, windows, and 4,000 increments through `uvicorn
--workers 4` (real processes) all counted by every worker."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.rawhttp import Connection
from gossip.clock import Timestamp
from gossip.config import Config
from gossip.counters import Counting, Tally, window_slot
from gossip.errors import CallerError
from gossip.namespaces import WINDOW
from gossip.protocol import GossipProtocol
from gossip.store import Entry, Store
from node.server.settings import Settings
from node.state import SharedState
from node.tools.testing import UvicornWorkers

ROOT = Path(__file__).resolve().parents[2]


def node(name: str) -> SharedState:
    return SharedState(Settings(node_id=name, config=Config.for_tests()), rng=random.Random(name))


def own_entries(state: SharedState) -> list[Entry]:
    return [e for e in state.protocol.store.entries() if e.origin == state.protocol.writer]


ops = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["a", "b"]), st.integers(0, 5), st.booleans()),
               max_size=30)


@settings(max_examples=150, deadline=None)
@given(ops=ops, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_every_node_counts_every_increment_whatever_the_merges(
    ops: list[tuple[int, str, int, bool]], seed: int, data: st.DataObject
) -> None:
    """Three nodes count; every entry any of them ever wrote is delivered to every node in
    a random order, some several times, some not at first (a loss, resent later): once a
    node has them all, its totals are the sums of all increments, and before that never
    more than them. (R22)"""
    nodes = [node(f"n{i}") for i in range(3)]
    expected = {"a": 0, "b": 0}
    written: list[Entry] = []
    for i, key, amount, up in ops:
        if up:
            nodes[i].incr(key, amount)
        else:
            nodes[i].decr(key, amount)
        expected[key] += amount if up else -amount
        written.extend(e for e in own_entries(nodes[i]) if e not in written)
    rng = random.Random(seed)
    for target in nodes:
        deliveries = written + [rng.choice(written) for _ in range(len(written) // 2)] if written else []
        rng.shuffle(deliveries)
        lost = set(data.draw(st.sets(st.integers(0, max(0, len(deliveries) - 1)))))
        for n, entry in enumerate(deliveries):
            if n not in lost:
                target.protocol.store.merge(entry)
        for entry in written:  # the resend, after the losses
            target.protocol.store.merge(entry)
        assert {k: target.count(k) for k in expected} == expected


def test_a_slot_counts_only_for_its_writer() -> None:
    """An entry under a counter slot that is not its writer's own counts for nothing. (R22)"""
    store, tally = Store(), Tally()
    tally.follow(store)
    store.merge(Entry("_gossip/counter/x/w#1", [5, 0], Timestamp(1, 0), "w#1"))
    store.merge(Entry("_gossip/counter/x/w#1", [9, 0], Timestamp(2, 0), "intruder#1"))  # wins LWW
    store.merge(Entry("_gossip/counter/x/v#1", ["junk", 0], Timestamp(3, 0), "v#1"))
    assert tally.total("x") == 0
    store.merge(Entry("_gossip/counter/x/v#1", [7, 2], Timestamp(4, 0), "v#1"))
    assert tally.total("x") == 5


def test_bad_input_is_refused_and_changes_nothing() -> None:
    state = node("n1")
    state.set("plain", 1)
    state.incr("hits", 2)
    version = state.protocol.store.version
    for bad in (lambda: state.incr("hits", -1), lambda: state.incr("hits", True),
                lambda: state.decr("hits", 1.5),  # type: ignore[arg-type]
                lambda: state.set("hits", 3), lambda: state.incr("plain"), lambda: state.incr(""),
                lambda: state.incr("_gossip/counter/x"), lambda: state.incr("k" * 300),
                lambda: state.incr_window("w", 0), lambda: state.incr_window("w", "1"),  # type: ignore[arg-type]
                lambda: state.set("_gossip/x", 1), lambda: state.delete("_gossip/x")):
        with pytest.raises(CallerError) as info:
            bad()
        assert str(info.value)
    assert state.protocol.store.version == version
    assert state.count("hits") == 2 and state.get("plain") == 1
    assert state.keys() == ["plain"] and len(state) == 1 and state.snapshot() == {"plain": 1}


def test_windows_count_apart_and_slide(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100_000]
    monkeypatch.setattr("node.server.local_state.wall_ms", lambda: now[0])
    a, b = node("a"), node("b")
    a.incr_window("ip", 10, 3)
    b.incr_window("ip", 10, 4)
    for entry in own_entries(b):
        a.protocol.store.merge(entry)
    seen = a.window_count("ip", 10)
    assert (seen.current, seen.previous) == (7, 0)
    now[0] += 12_500  # the next window, a quarter through
    counted = a.incr_window("ip", 10)
    assert (counted.current, counted.previous, counted.elapsed_ms) == (1, 7, 2_500)
    assert counted.sliding == pytest.approx(7 * 0.75 + 1)
    assert a.window_count("ip", 5).current == 0  # another period is another counter
    now[0] += 20_000  # both windows over
    assert (a.window_count("ip", 10).current, a.window_count("ip", 10).previous) == (0, 0)


def test_expired_windows_are_collected_without_the_grace() -> None:
    """A window's slots expire together, so they go as soon as every member holds them,
    while other expired entries wait the tombstone grace. (R7e)"""
    store = Store(grace_ms=86_400_000, final_expiry=lambda key: key.startswith(WINDOW))
    window = Entry(window_slot("ip", 1000, 5, "w#1"), 3, Timestamp(5_000, 0), "w#1", expires_at=7_000)
    plain = Entry("k", 1, Timestamp(5_000, 1), "w#1", expires_at=7_000)
    store.merge(window)
    store.merge(plain)
    assert store.collect(7_001, lambda writer: Timestamp(4_000, 0)) == 0  # not held by all yet
    assert store.collect(7_001, lambda writer: Timestamp(9_000, 0)) == 1
    assert store.get(window.key) is None and store.get("k") is plain


def test_a_reset_recounts() -> None:
    state = node("n1")
    state.incr("c", 3)
    state.protocol.store.clear()
    assert state.count("c") == 0
    state.incr("c")
    assert state.count("c") == 1


@pytest.fixture
def counting_workers() -> UvicornWorkers:
    return UvicornWorkers("examples.counter_app:app", workers=4, cwd=ROOT)


async def fresh_requests(port: int, method: str, path: str, count: int, concurrency: int = 40) -> list[Any]:
    """`count` requests, each on a connection of its own (so every worker takes some); a
    lean client, since it shares the two cores with the workers. Answers' JSON bodies."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> Any:
        async with semaphore:
            for attempt in range(4):
                connection = Connection(port)
                try:
                    status, body = await connection.request(method, path)
                    assert status == 200, body
                    return json.loads(body)
                except (ConnectionError, asyncio.IncompleteReadError):
                    if attempt == 3:  # refused under the burst: never counted, so sent again
                        raise
                    await asyncio.sleep(0.05)
                finally:
                    connection.close()

    return await asyncio.gather(*(one() for _ in range(count)))


def test_4000_concurrent_increments_through_4_workers_all_count(counting_workers: UvicornWorkers) -> None:
    with counting_workers as workers:
        answers = asyncio.run(fresh_requests(workers.port, "POST", "/hits/home", 4000))
        assert len({a["pid"] for a in answers}) > 1, "the kernel gave every connection to one worker"
        totals: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while not (len(totals) == 4 and set(totals.values()) == {4000}):
            assert time.monotonic() < deadline, f"worker totals after 30 s: {totals}"
            for a in asyncio.run(fresh_requests(workers.port, "GET", "/hits/home", 20)):
                totals[a["pid"]] = a["count"]


def test_deferred_counts_count_at_once_and_are_written_once_per_flush() -> None:
    """A burst of deferred hits is in the totals at once and costs one write at the flush;
    a peer that takes that entry counts them all; a window over by the flush is let go."""
    a, b = Counting(protocol("a")), Counting(protocol("b"))
    version = a.protocol.store.version
    for _ in range(50):
        seen = a.add_in_window("ip", 10_000, 2, 1_000, defer=True)
    assert seen.current == 100 and a.protocol.store.version == version  # counted, nothing written yet
    assert a.flush(1_005) == 1 and a.protocol.store.version == version + 1 and a.flush(1_006) == 0
    for entry in a.protocol.store.entries():
        b.protocol.store.merge(entry)
    assert b.window("ip", 10_000, 1_010).current == 100
    a.add_in_window("ip", 10_000, 1, 1_020, defer=True)
    assert a.flush(30_000) == 0  # (the window expired at 20 s: nothing left to spread)


def test_a_new_life_counts_in_a_slot_of_its_own_in_the_same_window() -> None:
    """A node that starts a new life keeping its state (a new writer, R16) counts the rest of
    a window, deferred or not, in the new writer's slot, never in the earlier life's."""
    a = Counting(protocol("a"))
    a.add_in_window("ip", 10_000, 3, 1_000, defer=True)
    first = a.protocol.writer
    a.protocol.lives.new(2_000)
    assert a.protocol.writer != first
    assert a.add_in_window("ip", 10_000, 4, 2_100, defer=True).current == 7
    assert a.add_in_window("ip", 10_000, 5, 2_200).current == 12
    assert a.flush(2_300) == 0  # (the earlier life's deferred count is let go: see flush())
    slots = {e.origin: e.value for e in a.protocol.store.entries() if e.key.startswith(WINDOW)}
    assert slots == {a.protocol.writer: 9}
    assert a.tally.own_window("ip", 10_000, 0, a.protocol.writer) == 9


def test_counts_past_a_limit_wake_no_flusher_and_go_with_the_next_writes() -> None:
    """A fixed window's hits past its limit (`limits` counts refused hits too) change no
    decision: they wake no flusher (a wake every 2 ms, each a push to every peer, cost
    slowapi's requests milliseconds), and are written with the next counts or round."""
    state = node("q")
    local = state._local
    local.deferring = True  # (as while the node's loops run)
    woken: list[str] = []
    local.wake.flusher = lambda: woken.append("flusher")  # type: ignore[method-assign]
    state.incr_window("ip", 10, 2, quiet_from=3)
    state.incr_window("ip", 10, 1, quiet_from=3)  # (the flusher, woken, has not flushed yet)
    assert woken == ["flusher"]
    local.flush_counts()
    assert state.incr_window("ip", 10, 1, quiet_from=3).current == 4  # past the limit: no wake
    assert woken == ["flusher"] and local.counting.unwritten == 1
    state.incr_window("other", 10, 1, quiet_from=3)  # under its limit: wakes, and takes the first along
    assert woken == ["flusher", "flusher"]
    local.flush_counts()
    assert local.counting.unwritten == 0
    assert sum(e.value for e in own_entries(state) if "/ip/" in e.key) == 4


def protocol(name: str) -> GossipProtocol:
    return GossipProtocol(Config.for_tests(), name, f"http://{name}", random.Random(name), 0)
