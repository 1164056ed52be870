"""An entry on its own (gossip/entry.py): a small immutable value whose timestamp is kept
as two numbers, and which behaves as the frozen record it replaces: equal, hashed, shown,
pickled and copied by its fields; the LWW order on (ts, origin); writer ids shared, not
copied, when decoded."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys
import typing

from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.entry import Entry
from gossip.membership import MemberInfo
from gossip.messages import Rumor, RumorGroup, RumorItem

TS = Timestamp(1_765_000_000_123, 7)


def make(**changes: object) -> Entry:
    fields: dict[str, object] = {"key": "k", "value": {"a": [1, 2]}, "ts": TS, "origin": "n1#5",
                                 "deleted": False, "expires_at": None}
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_the_timestamp_comes_back_as_a_timestamp_and_as_a_plain_tuple_that_compares_alike() -> None:
    entry = make()
    assert entry.ts == TS and type(entry.ts) is Timestamp
    assert (entry.wall, entry.counter) == entry.stamp == tuple(TS)
    assert type(entry.stamp) is tuple
    assert Timestamp(TS.wall, TS.counter + 1) > entry.stamp > Timestamp(TS.wall, TS.counter - 1)
    assert make(ts=(5, 6)).ts == Timestamp(5, 6)  # (the decoder hands a plain tuple)


def test_equal_hashed_and_shown_by_all_its_fields() -> None:
    assert make() == make() and hash(make(value="v")) == hash(make(value="v"))
    changes: list[dict[str, object]] = [
        {"key": "j"}, {"value": 2}, {"ts": Timestamp(TS.wall, 8)}, {"ts": Timestamp(TS.wall + 1, 7)},
        {"origin": "n2#5"}, {"deleted": True, "value": None}, {"expires_at": 9},
    ]
    for change in changes:
        assert make(**change) != make(), change
    assert repr(make(value=None, deleted=True)) == (
        "Entry(key='k', value=None, ts=Timestamp(wall=1765000000123, counter=7), origin='n1#5', "
        "deleted=True, expires_at=None)"
    )


def test_every_field_is_final() -> None:
    """An entry is shared by the store, the outbox and messages, so none may change: every
    field is Final, and the type checker (mypy --strict, in `make lint` and CI) refuses any
    assignment outside __init__."""
    hints = typing.get_type_hints(Entry, include_extras=True)
    assert set(hints) == {f.name for f in dataclasses.fields(Entry)}
    assert all(typing.get_origin(hint) is typing.Final for hint in hints.values()), hints


def test_pickled_and_copied_whole() -> None:
    entry = make(expires_at=1_765_000_001_000)
    for twin in (pickle.loads(pickle.dumps(entry)), copy.copy(entry), copy.deepcopy(entry)):
        assert twin == entry and twin is not entry and repr(twin) == repr(entry)


def test_the_lww_order_is_the_timestamp_then_the_writer() -> None:
    low, high = Timestamp(10, 0), Timestamp(10, 1)
    assert make(ts=high, origin="a").wins_over(make(ts=low, origin="z"))
    assert make(ts=high, origin="b").wins_over(make(ts=high, origin="a"))
    assert not make(ts=high, origin="a").wins_over(make(ts=high, origin="b"))
    assert make(value=2).wins_over(make(value=1)) != make(value=1).wins_over(make(value=2))


def test_it_is_smaller_than_the_record_it_replaces() -> None:
    """Seven slots and no dict: 72 bytes (88 with the collector's header), where the record
    with a Timestamp took 64 and the Timestamp 56 more."""
    entry = make()
    assert not hasattr(entry, "__dict__")
    assert sys.getsizeof(entry) <= 16 + 8 * 7 + 16


def test_decoded_entries_share_their_writer_id() -> None:
    """A node holds one entry per key: the writer id of each, decoded from a message, is
    one string shared by all (interned), not a copy per entry."""
    codec = Codec(Config())
    sender = MemberInfo("n1", "http://n1", 5, 0)
    items = tuple(RumorItem(make(key=f"k{i}", ts=Timestamp(10, i + 1)), Timestamp(10, i)) for i in range(3))
    first, second = (codec.decode(codec.encode(Rumor(sender, (RumorGroup((), items),)))) for _ in range(2))
    assert isinstance(first, Rumor) and isinstance(second, Rumor)
    origins = [item.entry.origin for item in (*first.items, *second.items)]
    assert origins == ["n1#5"] * 6
    assert all(origin is origins[0] for origin in origins)
