"""Property tests of the LWW merge (a join semilattice) and of the Hybrid Logical Clock.

Keys, writers and timestamps come from small domains so that equal keys, equal
timestamps and equal (ts, origin) pairs happen often.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.clock import HybridClock, Timestamp
from gossip.config import Config
from gossip.errors import ClockSkewRejected
from gossip.protocol import GossipProtocol
from gossip.store import Entry, Store

KEYS = ("a", "b", "c")
NODES = ("n1", "n2", "n3")

timestamps = st.builds(Timestamp, st.integers(0, 3), st.integers(0, 2))
small_values = st.one_of(
    st.none(), st.booleans(), st.integers(0, 3), st.sampled_from(["x", "y"]),
    st.lists(st.integers(0, 2), max_size=2),
)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    deleted = draw(st.booleans())
    return Entry(
        key=draw(st.sampled_from(KEYS)),
        value=None if deleted else draw(small_values),
        ts=draw(timestamps),
        origin=draw(st.sampled_from(NODES)),
        deleted=deleted,
        expires_at=None if deleted else draw(st.none() | st.integers(0, 3)),
    )


entry_lists = st.lists(entries(), max_size=12)


def store_of(items: Iterable[Entry]) -> Store:
    store = Store()
    for entry in items:
        store.merge(entry)
    return store


def merged(into: Store, other: Store) -> Store:
    """A new store: `into` with every entry of `other` merged in (inputs untouched)."""
    result = store_of(into.entries())
    for entry in other.entries():
        result.merge(entry)
    return result


def canonical(entry: Entry) -> tuple[object, ...]:
    """Entry identity with JSON types kept apart (1, 1.0 and True differ on the wire)."""
    value = json.dumps(entry.value, sort_keys=True)
    return (entry.key, value, entry.ts, entry.origin, entry.deleted, entry.expires_at)


def state(store: Store) -> dict[str, tuple[object, ...]]:
    return {e.key: canonical(e) for e in store.entries()}


# Deterministic (same examples every run) and no per-example deadline, so a loaded CI
# machine cannot make a property test flaky.
DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=200)

# -- the merge algebra -----------------------------------------------------------------


@DETERMINISTIC
@given(entry_lists, entry_lists)
def test_merge_is_commutative(xs: list[Entry], ys: list[Entry]) -> None:
    """R5: merge is commutative."""
    a, b = store_of(xs), store_of(ys)
    assert state(merged(a, b)) == state(merged(b, a))


@DETERMINISTIC
@given(entry_lists, entry_lists, entry_lists)
def test_merge_is_associative(xs: list[Entry], ys: list[Entry], zs: list[Entry]) -> None:
    """R5: merge is associative."""
    a, b, c = store_of(xs), store_of(ys), store_of(zs)
    assert state(merged(merged(a, b), c)) == state(merged(a, merged(b, c)))


@DETERMINISTIC
@given(entry_lists, entry_lists)
def test_merge_is_idempotent(xs: list[Entry], ys: list[Entry]) -> None:
    """R5: merge is idempotent."""
    a, b = store_of(xs), store_of(ys)
    assert state(merged(a, a)) == state(a)
    once = merged(a, b)
    assert state(merged(once, b)) == state(once)
    assert state(merged(once, once)) == state(once)


@DETERMINISTIC
@given(entry_lists)
def test_merge_ignores_arrival_order(xs: list[Entry]) -> None:
    shuffled = list(xs)
    random.Random(len(xs)).shuffle(shuffled)
    assert state(store_of(xs)) == state(store_of(reversed(xs))) == state(store_of(shuffled))


@DETERMINISTIC
@given(entry_lists, entry_lists)
def test_merge_is_inflationary(xs: list[Entry], ys: list[Entry]) -> None:
    """Every key of the result wins over, or equals, that key in each input; no key is lost."""
    a, b = store_of(xs), store_of(ys)
    result = merged(a, b)
    for source in (a, b):
        for entry in source.entries():
            got = result.get(entry.key)
            assert got is not None, f"key {entry.key!r} lost in the merge"
            assert canonical(got) == canonical(entry) or got.wins_over(entry)
    assert set(state(result)) == set(state(a)) | set(state(b))


@DETERMINISTIC
@given(entry_lists)
def test_merge_result_is_the_lww_maximum(xs: list[Entry]) -> None:
    """For each key the store keeps the entry with the greatest (ts, origin). (R4)"""
    store = store_of(xs)
    for key in {e.key for e in xs}:
        best = max((e.ts, e.origin) for e in xs if e.key == key)
        got = store.get(key)
        assert got is not None and (got.ts, got.origin) == best


@DETERMINISTIC
@given(timestamps, st.sampled_from(KEYS), small_values, small_values)
def test_ties_on_ts_break_on_node_id(
    ts: Timestamp, key: str, value1: object, value2: object
) -> None:
    """R4: entries with equal timestamps are ordered by their origin."""
    low = Entry(key, value1, ts, "n1")
    high = Entry(key, value2, ts, "n2")
    assert high.wins_over(low) and not low.wins_over(high)
    for order in ((low, high), (high, low)):
        got = store_of(order).get(key)
        assert got is not None and canonical(got) == canonical(high)


@DETERMINISTIC
@given(timestamps, timestamps, st.sampled_from(NODES), st.sampled_from(NODES), small_values)
def test_tombstone_beats_older_writes_and_loses_to_newer(
    t_write: Timestamp, t_delete: Timestamp, w_origin: str, d_origin: str, value: object
) -> None:
    """R6: a tombstone is an entry like any other: it wins over older writes, loses to newer ones."""
    write = Entry("k", value, t_write, w_origin)
    tomb = Entry("k", None, t_delete, d_origin, deleted=True)
    for order in ((write, tomb), (tomb, write)):
        store = store_of(order)
        got = store.get("k")
        assert got is not None
        if (t_delete, d_origin) > (t_write, w_origin):
            assert got.deleted, "a tombstone must beat an older write"
            assert store.live(0) == {}
        elif (t_delete, d_origin) < (t_write, w_origin):
            assert not got.deleted, "a newer write must beat an older tombstone"
            assert store.live(0) == {"k": write}


def test_equal_ts_and_origin_with_different_content_merge_the_same_everywhere() -> None:
    one = Entry("k", 1, Timestamp(5, 0), "n1")
    two = Entry("k", 2, Timestamp(5, 0), "n1")
    assert state(store_of([one, two])) == state(store_of([two, one]))


# -- the Hybrid Logical Clock -------------------------------------------------------------

MAX_OFFSET = 1_000

clock_ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(0, 5_000)),
        # remote timestamps near the local wall time, some beyond max_offset
        st.tuples(st.just("observe"), st.integers(-3_000, 3_000), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=40,
)


@settings(DETERMINISTIC, max_examples=300)
@given(st.integers(0, 10_000), clock_ops)
def test_hlc_never_goes_back_and_exceeds_every_observed(start: int, ops: list[tuple]) -> None:
    """R1, R2: each timestamp issued exceeds the last one issued and every one observed, and
    is never behind the wall clock; R3: a timestamp beyond max_offset is refused and moves nothing."""
    clock = HybridClock(MAX_OFFSET)
    wall = start
    issued: list[Timestamp] = []
    observed: list[Timestamp] = []
    for op in ops:
        if op[0] == "tick":
            # the wall clock moves by a random amount, backwards too
            wall = max(0, wall + op[1] - 2_500)
            ts = clock.tick(wall)
            if issued:
                assert ts > issued[-1], f"tick went back: {ts} after {issued[-1]}"
            for seen in observed:
                assert ts > seen, f"tick {ts} does not exceed observed {seen}"
            assert ts.wall >= wall, "an HLC timestamp is never behind the wall clock"
            issued.append(ts)
        else:
            remote = Timestamp(max(0, wall + op[1]), op[2])
            before = clock.last
            if remote.wall > wall + MAX_OFFSET:
                with pytest.raises(ClockSkewRejected, match="ahead of local wall time"):
                    clock.observe(remote, wall)
                assert clock.last == before, "a rejected timestamp moved the clock"
            else:
                clock.observe(remote, wall)
                observed.append(remote)
                assert clock.last >= before


def test_hlc_wall_clock_jumping_back_keeps_new_writes_winning() -> None:
    """R1: a wall clock that steps back never makes a later write lose to an earlier one."""
    clock = HybridClock(MAX_OFFSET)
    old = clock.tick(10_000)
    new = clock.tick(2_000)  # the wall clock jumped back 8 s
    assert new > old
    assert Entry("k", "new", new, "n1").wins_over(Entry("k", "old", old, "n1"))


def test_hlc_stays_close_to_wall_time() -> None:
    """R1: a timestamp is the wall clock's, or just above the last one issued or observed; once wall time
    passes that, the counter starts again at 0."""
    clock = HybridClock(MAX_OFFSET)
    clock.observe(Timestamp(1_500, 7), 1_000)  # a peer 500 ms ahead: accepted
    assert clock.tick(1_000) == Timestamp(1_500, 8)
    assert clock.tick(2_000) == Timestamp(2_000, 0)  # wall time caught up: counter resets


def test_hlc_rejects_far_future_without_moving() -> None:
    """R3: a remote timestamp more than max_offset ahead is refused, and the clock stays where it was."""
    clock = HybridClock(MAX_OFFSET)
    clock.tick(1_000)
    before = clock.last
    with pytest.raises(ClockSkewRejected, match="max_offset"):
        clock.observe(Timestamp(1_000 + MAX_OFFSET + 1, 0), 1_000)
    assert clock.last == before
    assert clock.tick(1_000) == Timestamp(1_000, 1)
    clock.observe(Timestamp(1_000 + MAX_OFFSET, 0), 1_000)  # exactly at the limit: accepted


# -- TTL ----------------------------------------------------------------------------------------


def make_node(node_id: str = "n1") -> GossipProtocol:
    return GossipProtocol(Config.for_tests(), node_id, f"mem://{node_id}", random.Random(0), 0)


@DETERMINISTIC
@given(st.integers(0, 10**9), st.integers(1, 10**6))
def test_ttl_entry_reads_absent_after_expiry(now: int, ttl_ms: int) -> None:
    """R7: an entry reads absent from its expiry on."""
    node = make_node()
    entry = node.write("k", "v", now, ttl=ttl_ms / 1000)
    assert entry.expires_at is not None and entry.expires_at > now
    assert node.read("k", now) == entry
    assert node.read("k", entry.expires_at - 1) == entry
    assert node.read("k", entry.expires_at) is None
    assert node.read("k", entry.expires_at + 10**6) is None
    assert "k" not in node.live(entry.expires_at)
    assert node.state_hash(entry.expires_at) == make_node("n2").state_hash(0)


def test_ttl_of_one_second() -> None:
    node = make_node()
    node.write("k", 1, 5_000, ttl=1.0)
    assert node.read("k", 5_999) is not None
    assert node.read("k", 6_000) is None
    node.write("k", 2, 7_000)  # a new write without TTL lives on
    assert node.read("k", 10**9) is not None
