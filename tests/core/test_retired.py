"""The retired set and what a peer holds (docs/PROTOCOL.md, R20): bucket hashes kept
current under any sequence of changes, and a peer's mark for a writer read from its
summary is always its true mark, or unknown, never a guess."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.clock import ZERO, Timestamp
from gossip.retired import BUCKETS, Holdings, RetiredSet, bucket_hash, bucket_of

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=300)

writers = st.sampled_from([f"n{i}#{g}" for i in range(6) for g in (1, 2, 3)])
ends = st.builds(Timestamp, st.integers(1, 4), st.integers(0, 2))
retired_maps = st.dictionaries(writers, ends, max_size=12)


def retired_set(items: dict[str, Timestamp]) -> RetiredSet:
    s = RetiredSet()
    for writer, end in items.items():
        s.set(writer, end)
    return s


@DETERMINISTIC
@given(st.lists(st.tuples(writers, st.none() | ends), max_size=30))
def test_bucket_hashes_follow_every_change(changes: list[tuple[str, Timestamp | None]]) -> None:
    live = RetiredSet()
    expected: dict[str, Timestamp] = {}
    for writer, end in changes:
        if end is None:
            live.discard(writer)
            expected.pop(writer, None)
        else:
            live.set(writer, end)
            expected[writer] = end
    fresh = retired_set(expected)
    assert dict(live) == expected
    assert live.summary(True) == fresh.summary(True)
    for b in range(BUCKETS):
        assert live.hash(b) == bucket_hash({w: e for w, e in expected.items() if bucket_of(w) == b})


@DETERMINISTIC
@given(retired_maps, retired_maps, st.dictionaries(writers, ends, max_size=4), st.booleans(), st.booleans())
def test_a_peers_mark_is_its_true_mark_or_unknown(
    ours: dict[str, Timestamp], theirs: dict[str, Timestamp], digest: dict[str, Timestamp],
    sends_buckets: bool, knows_ours: bool,
) -> None:
    """The peer lists the buckets it knows to differ (if it knows ours), sends its bucket
    hashes or only its root: whatever it sends, a mark we read is what it holds. (R20)"""
    theirs = {w: e for w, e in theirs.items() if w not in digest}  # a writer is listed or retired
    mine, peer = retired_set(ours), retired_set(theirs)
    listed: dict[str, Timestamp] = {}
    if knows_ours:
        for b in peer.differing(mine.summary(True)):
            listed.update(peer.bucket(b))
    holdings = Holdings(digest, peer.summary(sends_buckets), listed, mine)
    truth = {**theirs, **digest}
    for writer in {*ours, *theirs, *digest, "n9#1"}:
        mark = holdings.mark(writer)
        assert mark is None or mark == truth.get(writer, ZERO), writer
    if sends_buckets and knows_ours:
        assert holdings.complete
        assert all(holdings.mark(w) == truth.get(w, ZERO) for w in {*ours, *theirs, *digest})
    if holdings.complete:
        assert dict(holdings.retired_items()) == theirs


def test_a_bucket_found_equal_stops_counting_once_ours_changes() -> None:
    ours = retired_set({"a#1": Timestamp(5, 0)})
    peer = retired_set({"a#1": Timestamp(5, 0)})
    holdings = Holdings({}, peer.summary(True), {}, ours)
    assert holdings.mark("a#1") == Timestamp(5, 0)
    ours.set("a#1", Timestamp(6, 0))  # we learnt more of it: the peer's bucket no longer matches
    assert holdings.mark("a#1") is None
    assert not holdings.complete


def test_a_listing_that_does_not_add_up_to_its_bucket_tells_nothing_of_absent_writers() -> None:
    assert bucket_of("a#1") == bucket_of("w19#1") != bucket_of("z#1")
    ours = retired_set({})
    peer = retired_set({"a#1": Timestamp(5, 0), "w19#1": Timestamp(7, 0)})
    cut = {"a#1": Timestamp(5, 0)}  # a partial listing of their bucket (w19#1 left out)
    holdings = Holdings({}, peer.summary(True), cut, ours)
    assert holdings.mark("a#1") == Timestamp(5, 0)  # what is listed is true
    assert holdings.mark("w19#1") is None  # and the rest of that bucket unknown
    assert holdings.mark("z#1") == ZERO  # another bucket, empty on both sides: known absent
    assert not holdings.complete


def test_a_retired_set_answers_get_as_a_mapping_does() -> None:
    retired = RetiredSet()
    retired.set("w#1", Timestamp(3, 0))
    assert retired.get("w#1") == Timestamp(3, 0) and retired.get("w#2") is None
    assert retired.get("w#2", Timestamp(0, 0)) == Timestamp(0, 0)
    assert retired.get("w#1", None) == Timestamp(3, 0)
