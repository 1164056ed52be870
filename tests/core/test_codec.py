"""The wire codec: every message type round-trips; hostile or broken input is refused with
a PeerError that says what was wrong; a far-future timestamp is refused by the protocol
with nothing applied."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.clock import Timestamp
from gossip.codec import PROTOCOL_VERSION, Codec
from gossip.config import Config
from gossip.errors import ClockSkewRejected, IncompatibleMessage, InvalidValue, MalformedMessage, PeerError
from gossip.membership import MemberInfo
from gossip.messages import (
    BEHIND_REASONS,
    Behind,
    Exchange,
    ForgottenLife,
    Message,
    Reply,
    Rumor,
    RumorGroup,
    RumorItem,
    WriterDelta,
)
from gossip.protocol import GossipProtocol
from gossip.retired import BUCKETS, RetiredSummary
from gossip.store import Entry

CONFIG = Config.for_tests(cluster_id="test-cluster")
CODEC = Codec(CONFIG)

# Deterministic (same examples every run) and no per-example deadline, so a loaded CI
# machine cannot make a property test flaky.
DETERMINISTIC = settings(derandomize=True, deadline=None)

# -- strategies ---------------------------------------------------------------------------

names = st.text(min_size=1, max_size=12)  # text() leaves out lone surrogates
ints = st.integers(0, 2**53 - 1)
timestamps = st.builds(Timestamp, ints, ints)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
members = st.builds(MemberInfo, names, names, ints, ints)


@st.composite
def entries_of(draw: st.DrawFn, origin: str, ts: Timestamp) -> Entry:
    deleted = draw(st.booleans())
    return Entry(
        key=draw(st.text(min_size=1, max_size=20)),
        value=None if deleted else draw(json_values),
        ts=ts,
        origin=origin,
        deleted=deleted,
        expires_at=draw(st.none() | ints),
    )


@st.composite
def writer_deltas(draw: st.DrawFn) -> WriterDelta:
    origin = draw(names)
    stamps = sorted(draw(st.lists(timestamps, min_size=2, max_size=5, unique=True)))
    base, upto = stamps[0], stamps[-1]
    inside = draw(st.lists(st.sampled_from(stamps[1:]), max_size=4))
    items = tuple(draw(entries_of(origin, ts)) for ts in sorted(inside))
    return WriterDelta(origin, base, upto, items, draw(st.booleans()))


@st.composite
def rumor_items(draw: st.DrawFn) -> RumorItem:
    prev, ts = sorted(draw(st.lists(timestamps, min_size=2, max_size=2, unique=True)))
    return RumorItem(draw(entries_of(draw(names), ts)), prev)


writer_maps = st.dictionaries(names, timestamps, max_size=4)
evidence = st.builds(Behind, st.sampled_from(BEHIND_REASONS), names, timestamps)
hashes = st.integers(0, 2**64 - 1)


@st.composite
def retired_sums(draw: st.DrawFn) -> RetiredSummary:
    """A retired set's summary: empty, or a count with its root, and maybe its buckets."""
    count = draw(st.integers(0, 2**53 - 1))
    if count == 0:
        return RetiredSummary()
    buckets = tuple(draw(st.lists(hashes, min_size=BUCKETS, max_size=BUCKETS)))
    root = 0
    for b in buckets:
        root ^= b
    return RetiredSummary(count, root, buckets if draw(st.booleans()) else None)


@st.composite
def summaries_of(draw: st.DrawFn, kind: type[Exchange] | type[Reply]) -> Exchange | Reply:
    roster_end = draw(st.none() | st.booleans())
    lives = st.dictionaries(names, st.builds(ForgottenLife, ints, timestamps), max_size=3)
    return kind(
        draw(members), draw(writer_maps), tuple(draw(st.lists(members, max_size=4))),
        tuple(draw(st.lists(writer_deltas(), max_size=3))), draw(writer_maps), draw(writer_maps),
        draw(timestamps), draw(st.booleans()), draw(st.booleans()), draw(st.none() | evidence),
        draw(retired_sums()), draw(ints), draw(st.none() | st.just("") | names), roster_end,
        {} if roster_end is None else draw(lives),
        {} if roster_end is None else draw(writer_maps),
    )


def summaries(kind: type[Exchange] | type[Reply]) -> st.SearchStrategy[Exchange | Reply]:
    return summaries_of(kind)


groups = st.builds(
    RumorGroup, st.lists(names, max_size=4).map(tuple), st.lists(rumor_items(), max_size=4).map(tuple)
)
messages = st.one_of(
    summaries(Exchange),
    summaries(Reply),
    st.builds(Rumor, members, st.lists(groups, max_size=3).map(tuple)),
)


# -- round trips ----------------------------------------------------------------------------


@DETERMINISTIC
@given(messages)
def test_every_message_round_trips(message: Message) -> None:
    data = CODEC.encode(message)
    assert isinstance(data, bytes)
    decoded = CODEC.decode(data)
    assert type(decoded) is type(message)
    assert decoded == message
    assert CODEC.encode(decoded) == data


def test_empty_messages_round_trip() -> None:
    me = MemberInfo("n1", "http://127.0.0.1:8001", 1, 0)
    for message in (Exchange(me, {}, (), ()), Reply(me, {}, (me,), ()), Rumor.of(me, ())):
        assert CODEC.decode(CODEC.encode(message)) == message


def test_encoding_carries_version_and_cluster() -> None:
    me = MemberInfo("n1", "a", 1, 0)
    body = json.loads(CODEC.encode(Rumor.of(me, ())))
    assert body["v"] == PROTOCOL_VERSION and body["cluster"] == "test-cluster"


# -- rejection --------------------------------------------------------------------------------

ME = MemberInfo("n1", "http://127.0.0.1:8001", 1_000, 3)
GOOD_ENTRY = Entry("k", {"a": [1, 2]}, Timestamp(1_000, 1), "n1")
GOOD_EXCHANGE = Exchange(
    ME,
    {"n1": Timestamp(1_000, 1)},
    (ME, MemberInfo("n2", "http://127.0.0.1:8002", 1_000, 0)),
    (WriterDelta("n1", Timestamp(0, 0), Timestamp(1_000, 1), (GOOD_ENTRY,)),),
)
GOOD_RUMOR = Rumor.of(
    ME, (RumorItem(GOOD_ENTRY, Timestamp(999, 0)),), ("http://127.0.0.1:8003", "http://b")
)

Body = dict[str, Any]


def exchange_body() -> Body:
    body: Body = json.loads(CODEC.encode(GOOD_EXCHANGE))
    return body


def rumor_body() -> Body:
    body: Body = json.loads(CODEC.encode(GOOD_RUMOR))
    return body


def entry_at(body: Body) -> list[Any]:
    """The wire form of the first entry of the first delta."""
    entry: list[Any] = body["delta"][0][3][0]
    return entry


def mutated(make: Callable[[], Body], change: Callable[[Body], object]) -> bytes:
    body = make()
    change(body)
    return json.dumps(body).encode()


def test_the_unmutated_bodies_are_valid() -> None:
    assert CODEC.decode(json.dumps(exchange_body()).encode()) == GOOD_EXCHANGE
    assert CODEC.decode(json.dumps(rumor_body()).encode()) == GOOD_RUMOR


def set_entry(index: int, value: object) -> Callable[[Body], object]:
    return lambda b: entry_at(b).__setitem__(index, value)


LONG_KEY = "k" * (CONFIG.max_key_bytes + 1)
BIG_VALUE = "x" * CONFIG.max_value_bytes
DEEP_VALUE: object = 0
for _ in range(CONFIG.max_value_depth + 1):
    DEEP_VALUE = [DEEP_VALUE]

CASES: list[tuple[str, bytes, type[PeerError], str]] = [
    ("not-json", b"{not json", MalformedMessage, "not JSON"),
    ("empty-body", b"", MalformedMessage, "not JSON"),
    ("not-utf8", b"\xff\xfe\x00garbage", MalformedMessage, "not JSON"),
    ("deeply-nested-json", b"[" * 100_000 + b"]" * 100_000, MalformedMessage, "not JSON"),
    ("array-not-object", b"[1, 2]", MalformedMessage, "message must be an object"),
    ("string-not-object", b'"hello"', MalformedMessage, "message must be an object"),
    *[
        (f"missing-{name}", mutated(exchange_body, lambda b, n=name: b.pop(n)), MalformedMessage,
         f"missing field '{name}'")
        for name in ("v", "cluster", "type", "sender", "digest", "members", "delta")
    ],
    ("missing-groups", mutated(rumor_body, lambda b: b.pop("groups")), MalformedMessage,
     "missing field 'groups'"),
    ("wrong-version", mutated(exchange_body, lambda b: b.update(v=PROTOCOL_VERSION + 1)),
     IncompatibleMessage, "protocol version"),
    ("version-as-string", mutated(exchange_body, lambda b: b.update(v="1")),
     IncompatibleMessage, "protocol version"),
    ("wrong-cluster", mutated(exchange_body, lambda b: b.update(cluster="other")),
     IncompatibleMessage, "cluster id 'other'"),
    ("unknown-type", mutated(exchange_body, lambda b: b.update(type="gimme")),
     MalformedMessage, "type must be one of"),
    ("sender-not-array", mutated(exchange_body, lambda b: b.update(sender="n1")),
     MalformedMessage, "sender must be an array"),
    ("sender-short", mutated(exchange_body, lambda b: b["sender"].pop()),
     MalformedMessage, "sender must have 5 items"),
    ("sender-empty-id", mutated(exchange_body, lambda b: b["sender"].__setitem__(0, "")),
     MalformedMessage, "sender id must be a string"),
    ("sender-long-id", mutated(exchange_body, lambda b: b["sender"].__setitem__(0, "n" * 257)),
     MalformedMessage, "sender id must be a string"),
    ("heartbeat-negative", mutated(exchange_body, lambda b: b["sender"].__setitem__(3, -1)),
     MalformedMessage, r"sender heartbeat must be an integer in \[0, 2\*\*53\)"),
    ("heartbeat-string", mutated(exchange_body, lambda b: b["sender"].__setitem__(3, "3")),
     MalformedMessage, "sender heartbeat must be an integer"),
    ("heartbeat-bool", mutated(exchange_body, lambda b: b["sender"].__setitem__(3, True)),
     MalformedMessage, "sender heartbeat must be an integer"),
    ("heartbeat-float", mutated(exchange_body, lambda b: b["sender"].__setitem__(3, 1.5)),
     MalformedMessage, "sender heartbeat must be an integer"),
    ("heartbeat-huge", mutated(exchange_body, lambda b: b["sender"].__setitem__(3, 2**60)),
     MalformedMessage, "sender heartbeat must be an integer"),
    ("digest-not-object", mutated(exchange_body, lambda b: b.update(digest=[])),
     MalformedMessage, "digest must be an object"),
    ("digest-bad-ts", mutated(exchange_body, lambda b: b["digest"].update(n1=[1])),
     MalformedMessage, r"digest\['n1'\] must have 2 items"),
    ("digest-ts-string", mutated(exchange_body, lambda b: b["digest"].update(n1=["1", 0])),
     MalformedMessage, r"digest\['n1'\] wall must be an integer"),
    ("members-not-array", mutated(exchange_body, lambda b: b.update(members={})),
     MalformedMessage, "members must be an array"),
    ("member-bad", mutated(exchange_body, lambda b: b["members"].__setitem__(1, [1, 2, 3, 4, 0])),
     MalformedMessage, r"members\[1\] id must be a string"),
    ("delta-not-array", mutated(exchange_body, lambda b: b.update(delta="all")),
     MalformedMessage, "delta must be an array"),
    ("delta-short", mutated(exchange_body, lambda b: b["delta"][0].pop()),
     MalformedMessage, r"delta\[0\] must have 4 items"),
    ("entry-short", mutated(exchange_body, lambda b: entry_at(b).pop()),
     MalformedMessage, r"delta\[0\] entries\[0\] must have 6 items"),
    ("key-not-string", mutated(exchange_body, set_entry(0, 7)),
     MalformedMessage, "key must be a string"),
    ("key-empty", mutated(exchange_body, set_entry(0, "")),
     MalformedMessage, "key must not be empty"),
    ("key-too-long", mutated(exchange_body, set_entry(0, LONG_KEY)),
     MalformedMessage, f"key is {CONFIG.max_key_bytes + 1} bytes, the limit is"),
    ("value-too-big", mutated(exchange_body, set_entry(1, BIG_VALUE)),
     MalformedMessage, "value is .* bytes as JSON, the limit is"),
    ("value-too-deep", mutated(exchange_body, set_entry(1, DEEP_VALUE)),
     MalformedMessage, f"nests deeper than {CONFIG.max_value_depth}"),
    ("value-nan", mutated(exchange_body, set_entry(1, float("nan"))),
     MalformedMessage, "not JSON"),  # NaN is no JSON literal
    ("value-infinite", mutated(exchange_body, set_entry(1, float("inf"))),
     MalformedMessage, "not JSON"),
    ("wall-string", mutated(exchange_body, set_entry(2, "1000")),
     MalformedMessage, "wall must be an integer"),
    ("deleted-flag-2", mutated(exchange_body, set_entry(4, 2)),
     MalformedMessage, "deleted must be 0 or 1"),
    ("tombstone-with-value", mutated(exchange_body, set_entry(4, 1)),
     MalformedMessage, "a tombstone carries no value"),
    ("expires-negative", mutated(exchange_body, set_entry(5, -5)),
     MalformedMessage, "expires_at must be an integer"),
    ("entry-at-base", mutated(exchange_body, lambda b: b["delta"][0].__setitem__(1, [1_000, 1])),
     MalformedMessage, r"must lie in \(base, upto\]"),
    ("entry-above-upto", mutated(exchange_body, lambda b: b["delta"][0].__setitem__(2, [1_000, 0])),
     MalformedMessage, r"must lie in \(base, upto\]"),
    ("rumor-groups-not-array", mutated(rumor_body, lambda b: b.update(groups={})),
     MalformedMessage, "groups must be an array"),
    ("rumor-group-short", mutated(rumor_body, lambda b: b["groups"][0].pop()),
     MalformedMessage, r"groups\[0\] must have 2 items"),
    ("rumor-items-not-array", mutated(rumor_body, lambda b: b["groups"][0].__setitem__(1, {})),
     MalformedMessage, "items must be an array"),
    ("rumor-item-short", mutated(rumor_body, lambda b: b["groups"][0][1][0].pop()),
     MalformedMessage, r"items\[0\]: expected 9 fields"),
    ("rumor-prev-not-below", mutated(rumor_body, lambda b: b["groups"][0][1][0].__setitem__(1, 2_000)),
     MalformedMessage, "prev must be below"),
    ("cover-not-array", mutated(rumor_body, lambda b: b["groups"][0].__setitem__(0, "x")),
     MalformedMessage, "cover must be an array"),
    ("cover-empty-address", mutated(rumor_body, lambda b: b["groups"][0][0].__setitem__(1, "")),
     MalformedMessage, r"cover\[1\] must be a string"),
    ("cover-not-string", mutated(rumor_body, lambda b: b["groups"][0][0].__setitem__(0, 5)),
     MalformedMessage, r"cover\[0\] must be a string"),
    ("rumor-key-too-long", mutated(rumor_body, lambda b: b["groups"][0][1][0].__setitem__(3, LONG_KEY)),
     MalformedMessage, "key is .* bytes, the limit is"),
]


@pytest.mark.parametrize(
    ("data", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decode_rejects(data: bytes, error: type[PeerError], match: str) -> None:
    with pytest.raises(error, match=match):
        CODEC.decode(data)


def test_decode_rejects_huge_integer_literal() -> None:
    data = CODEC.encode(GOOD_EXCHANGE).replace(
        b'"sender":["n1","http://127.0.0.1:8001",1000',
        b'"sender":["n1","http://127.0.0.1:8001",' + b"9" * 5000,
    )
    with pytest.raises(MalformedMessage):
        CODEC.decode(data)


SURROGATE = "\\udc00"  # a lone surrogate, as a JSON escape: not text, cannot be re-encoded


@pytest.mark.parametrize(
    "where",
    ["key", "value", "object-key-in-value", "sender-id", "member-address", "digest-writer",
     "delta-origin", "rumor-origin", "rumor-cover"],
)
def test_decode_rejects_lone_surrogates(where: str) -> None:
    """A string that is not valid Unicode must be refused at the door: accepted, it would
    make every later message that carries it fail to encode (a poisoned node)."""
    body = rumor_body() if where.startswith("rumor") else exchange_body()
    marker = "@@SURROGATE@@"
    if where == "key":
        entry_at(body)[0] = marker
    elif where == "value":
        entry_at(body)[1] = marker
    elif where == "object-key-in-value":
        entry_at(body)[1] = {marker: 1}
    elif where == "sender-id":
        body["sender"][0] = marker
    elif where == "member-address":
        body["members"][1][1] = marker
    elif where == "digest-writer":
        body["digest"][marker] = [1, 0]
    elif where == "delta-origin":
        body["delta"][0][0] = marker
    elif where == "rumor-origin":
        body["groups"][0][1][0][0] = marker
    else:
        body["groups"][0][0][0] = marker
    data = json.dumps(body).replace(marker, SURROGATE).encode()
    with pytest.raises(MalformedMessage):
        CODEC.decode(data)


def test_local_writes_refuse_lone_surrogates() -> None:
    from gossip.errors import InvalidKey, InvalidValue

    node = GossipProtocol(CONFIG, "n1", "mem://n1", random.Random(0), 1_000)
    with pytest.raises(InvalidKey):
        node.write("\udc00", 1, 1_000)
    with pytest.raises(InvalidValue):
        node.write("k", "\udc00", 1_000)
    with pytest.raises(InvalidValue):
        node.write("k", {"\udc00": 1}, 1_000)
    assert len(node.store) == 0


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, [1, {"n": 2**70}]])
def test_integers_in_values_fit_in_64_bits(value: object) -> None:
    """Every node must read a value back as it was written; the JSON parser reads
    integers beyond 64 bits as floats, so such a value is refused where it is written."""
    node = GossipProtocol(CONFIG, "n1", "mem://n1", random.Random(0), 1_000)
    with pytest.raises(InvalidValue, match="64 bits"):
        node.write("k", value, 1_000)
    for edge in (2**64 - 1, -(2**63), True):
        node.write("k", [edge], 1_000)
        held = node.store.get("k")
        assert held is not None
        decoded = CODEC.decode(CODEC.encode(Rumor.of(ME, (RumorItem(held, Timestamp(0, 0)),))))
        assert isinstance(decoded, Rumor) and decoded.items[0].entry.value == [edge]


SMALL = Config.for_tests(
    cluster_id="test-cluster", max_entries_per_message=3, max_members_per_message=2
)


def test_decode_rejects_too_many_entries() -> None:
    codec = Codec(SMALL)
    entries = tuple(Entry(f"k{i}", i, Timestamp(10, i), "n1") for i in range(4))
    # four entries split over two writer deltas still count together
    message = Exchange(
        ME, {}, (),
        (WriterDelta("n1", Timestamp(0, 0), Timestamp(10, 1), entries[:2]),
         WriterDelta("n1", Timestamp(10, 1), Timestamp(10, 3), entries[2:])),
    )
    with pytest.raises(MalformedMessage, match="more than 3 entries"):
        codec.decode(CODEC.encode(message))
    rumor = Rumor.of(ME, tuple(RumorItem(e, Timestamp(1, 0)) for e in entries))
    with pytest.raises(MalformedMessage, match="more than 3 entries"):
        codec.decode(CODEC.encode(rumor))
    codec.decode(CODEC.encode(Rumor.of(ME, rumor.items[:3])))  # at the limit: accepted


def test_decode_rejects_too_many_members_or_writers() -> None:
    codec = Codec(SMALL)
    crowd = tuple(MemberInfo(f"n{i}", f"a{i}", 1, 0) for i in range(3))
    with pytest.raises(MalformedMessage, match="more than 2 members"):
        codec.decode(CODEC.encode(Exchange(ME, {}, crowd, ())))
    digest = {m.id: Timestamp(1, 0) for m in crowd}
    with pytest.raises(MalformedMessage, match="more than 2 writers"):
        codec.decode(CODEC.encode(Reply(ME, digest, (), ())))
    codec.decode(CODEC.encode(Exchange(ME, {}, crowd[:2], ())))  # at the limit: accepted
    addresses = tuple(m.address for m in crowd)
    with pytest.raises(MalformedMessage, match="cover lists more than 2 addresses"):
        codec.decode(CODEC.encode(Rumor.of(ME, (), addresses)))
    codec.decode(CODEC.encode(Rumor.of(ME, (), addresses[:2])))


# -- far-future timestamps: refused, nothing applied ----------------------------------------

NOW = 1_700_000_000_000
FUTURE = Timestamp(NOW + CONFIG.max_offset_ms + 1, 0)


def receiver() -> GossipProtocol:
    node = GossipProtocol(CONFIG, "r", "mem://r", random.Random(1), NOW)
    node.write("mine", "before", NOW)
    node.membership.merge([MemberInfo("n9", "mem://n9", 1, 0)], NOW)
    return node


def snapshot(node: GossipProtocol) -> tuple[object, ...]:
    return (
        node.state_hash(NOW),
        [(e.key, e.value, e.ts, e.origin) for e in node.store.entries()],
        dict(node.store.watermarks),
        node.clock.last,
        sorted(node.membership.members),
        node.stats.entries_applied,
        node.has_rumors(),
    )


def through_codec(message: Message) -> Message:
    return CODEC.decode(CODEC.encode(message))


def sender_info() -> MemberInfo:
    return MemberInfo("s", "mem://s", 1, 5)


def good_and_future_deltas() -> tuple[WriterDelta, ...]:
    good = Entry("ok", "fine", Timestamp(NOW - 10, 0), "s")
    bad = Entry("evil", "pinned", FUTURE, "t")
    return (
        WriterDelta("s", Timestamp(0, 0), good.ts, (good,)),
        WriterDelta("t", Timestamp(0, 0), FUTURE, (bad,)),
    )


@pytest.mark.parametrize("kind", ["exchange-delta", "exchange-digest", "reply", "rumor"])
def test_far_future_timestamp_is_refused_and_nothing_applied(kind: str) -> None:
    """R3: a message carrying a timestamp beyond max_offset anywhere is refused whole."""
    node = receiver()
    before = snapshot(node)
    message: Message
    if kind == "exchange-delta":
        message = Exchange(sender_info(), {}, (sender_info(),), good_and_future_deltas())
    elif kind == "exchange-digest":
        message = Exchange(sender_info(), {"s": Timestamp(1, 0), "t": FUTURE}, (), ())
    elif kind == "reply":
        message = Reply(sender_info(), {}, (), good_and_future_deltas())
    else:
        good = Entry("ok", "fine", Timestamp(NOW - 10, 0), "s")
        bad = Entry("evil", "pinned", FUTURE, "t")
        message = Rumor.of(sender_info(), (RumorItem(good, Timestamp(0, 0)),
                                        RumorItem(bad, Timestamp(0, 0))))
    decoded = through_codec(message)  # well-formed: the codec lets it through
    with pytest.raises(ClockSkewRejected, match="ahead of local wall time"):
        if isinstance(decoded, Reply):
            node.on_reply("mem://s", decoded, NOW)
        else:
            node.handle(decoded, NOW)
    assert snapshot(node) == before, "a refused message changed the node"
    assert node.read("ok", NOW) is None and node.read("evil", NOW) is None
    # the clock was not pinned in the future: a new local write still looks like now
    assert node.write("mine", "after", NOW).ts.wall == NOW
    after = node.read("mine", NOW)
    assert after is not None and after.value == "after"


def test_timestamp_at_the_offset_limit_is_accepted() -> None:
    node = receiver()
    edge = Entry("edge", 1, Timestamp(NOW + CONFIG.max_offset_ms, 0), "s")
    node.handle(through_codec(Rumor.of(sender_info(), (RumorItem(edge, Timestamp(0, 0)),))), NOW)
    assert node.read("edge", NOW) == edge
    assert node.write("mine", 2, NOW).ts > edge.ts
