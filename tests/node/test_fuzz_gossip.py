"""Fuzzing the path a peer's raw body takes: verify + decode + merge, through
SharedState.receive(body, headers), the very call the node's /gossip route makes.

For any input the only exceptions allowed are PeerError subclasses (AuthError included);
a refused message changes nothing (state hash, entries, watermarks, clock, membership);
an accepted one is applied (every entry it carries is held, or beaten by what is held).

`make test` runs a bounded number of examples; `FUZZ_EXAMPLES=20000 make fuzz` runs long.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from gossip.auth import HEADERS, KeyRing, ReplayError, key_id, sign
from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.errors import InvalidValue, PeerError
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Message, Reply, Rumor, RumorItem, WriterDelta
from gossip.store import Entry
from node.server.settings import Settings
from node.state import SharedState, wall_ms

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY = bytes(range(32))
CONFIG = Config.for_tests(cluster_id="fuzz")
CODEC = Codec(CONFIG)
RING = KeyRing.of(KEY)


@pytest.fixture(scope="module")
def state() -> Iterator[SharedState]:
    async def make() -> SharedState:  # anyio primitives inside need an event loop to be made
        settings = Settings(node_id="fuzzed", gossip_key=KEY.hex(), config=CONFIG, discovery_dir="off")
        return SharedState(settings)

    shared = anyio.run(make)
    shared.set("local", "written before the fuzzing")  # something a bad merge could break
    yield shared
    anyio.run(shared.aclose)


@dataclass(frozen=True)
class Snapshot:
    hash: tuple[str, int]
    entries: dict[str, Entry]
    watermarks: dict[str, Timestamp]
    clock: Timestamp
    members: dict[str, MemberInfo]
    retired: dict[str, Timestamp]
    collected: Timestamp
    behind_peers: int

    def coverage(self, origin: str) -> Timestamp:
        return self.watermarks.get(origin) or self.retired.get(origin, Timestamp(0, 0))


def snapshot(state: SharedState) -> Snapshot:
    p = state.protocol
    # The hash at time 0, when nothing has expired: an entry reaching its expiry between two
    # looks is not a change.
    return Snapshot(
        p.store.state_hash(0), dict(p.store._entries), dict(p.store.watermarks), p.clock.last,
        {i: m.info for i, m in p.membership.members.items()}, dict(p.store.retired),
        p.store.collected, p.stats.behind_peers,
    )


def signed(body: bytes, at_ms: int | None = None) -> dict[str, str]:
    return sign(RING, CONFIG.cluster_id, body, wall_ms() if at_ms is None else at_ms, secrets.token_hex(16))


def carried(message: Message, before: Snapshot) -> list[Entry]:
    """The entries of a message the node must take, by docs/PROTOCOL.md: not those of a
    sender found behind our collections (R7c), of a delta that starts past our history
    of its writer (R10), of a key we lack that our watermark already covers (R7b), nor
    a push as old as what we have collected (R7b)."""
    # Each group is (base or prev, entries): a rumor item is a group of its own (the
    # watermark moves after each), a writer's delta one group (it moves at its end).
    if isinstance(message, Rumor):
        groups = [(item.prev, (item.entry,), item.entry.ts) for item in message.items]
    else:
        groups = [(d.base, d.entries, d.upto) for d in message.delta]
    coverage = {e.origin: before.coverage(e.origin) for _, es, _ in groups for e in es}
    held = set(before.entries)
    taken = []
    for base, group, reach in groups:
        if not group:
            continue
        origin = group[0].origin
        mine = coverage[origin]
        if mine < base and group[-1].ts > mine:
            note_event("left: past our history of its writer")
            continue
        for entry in group:
            absent = entry.key not in held
            if absent and entry.ts <= mine:
                note_event("left: superseded")
            elif absent and isinstance(message, Rumor) and entry.ts <= before.collected:
                note_event("left: a stale push")
                reach = mine
            else:
                taken.append(entry)
                held.add(entry.key)
        coverage[origin] = max(mine, reach)
    return taken


def note_event(text: str) -> None:
    """Count outcomes for --hypothesis-show-statistics (inside a Hypothesis test only)."""
    if currently_in_test_context():
        event(text)


def feed(state: SharedState, body: bytes, headers: dict[str, str]) -> bool:
    """Hand a raw body to the node; check the outcome. True if it was accepted."""
    before = snapshot(state)
    try:
        state.receive(body, headers)
    except PeerError as exc:
        note_event(f"refused: {type(exc).__name__}")
        assert snapshot(state) == before, "a refused message changed the state"
        return False
    note_event("accepted")
    # Accepted: every entry it carried is held, or beaten by what is held.
    message = CODEC.decode(body)
    after = snapshot(state)
    if after.behind_peers > before.behind_peers:
        note_event("left: a sender behind our collections")
        return True
    for entry in carried(message, before):
        held = after.entries[entry.key]
        assert held == entry or held.wins_over(entry)
        assert after.clock >= entry.ts
    for origin, mark in before.watermarks.items():
        assert after.watermarks[origin] >= mark  # watermarks only move forward
    return True


# -- strategies ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=True)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=4), inner, max_size=3),
    max_leaves=12,
)
valid_values = st.recursive(
    st.none() | st.booleans() | st.integers(0, 9) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    max_leaves=8,
)
valid_keys = st.sampled_from(["a", "b", "c", "local", "\u00e9"])
bad_keys = st.sampled_from(["k" * 300, ""])
origins = st.sampled_from(["w1", "w2", "fuzzed"])


@st.composite
def timestamps(draw: st.DrawFn, now: int, valid: bool) -> Timestamp:
    """In the recent past; unless valid, sometimes past max_offset or far in the future."""
    # Offsets from `now` are drawn, not absolute times, so the draws never depend on the clock.
    ahead = draw(st.booleans()) if not valid else False
    if ahead:
        wall = min(2**53 - 1, now + CONFIG.max_offset_ms + draw(st.integers(1_000, 10**13)))
    else:
        wall = now - draw(st.integers(0, 10**7))
    return Timestamp(wall, draw(st.integers(0, 3)))


@st.composite
def entries(draw: st.DrawFn, origin: str, now: int, valid: bool) -> Entry:
    deleted = draw(st.booleans())
    value = None if deleted else draw(valid_values if valid else valid_values | json_values)
    expires = draw(st.none() | st.integers(-1000, 10**6).map(lambda d: now + d))
    key = draw(valid_keys if valid else valid_keys | bad_keys)
    return Entry(key, value, draw(timestamps(now, valid)), origin, deleted, expires)


def members() -> st.SearchStrategy[MemberInfo]:
    return st.builds(MemberInfo, st.sampled_from(["p1", "p2", "fuzzed"]),
                     st.sampled_from(["http://127.0.0.1:1", "http://127.0.0.1:2"]),
                     st.integers(0, 5), st.integers(0, 5))


@st.composite
def messages(draw: st.DrawFn, valid: bool = False) -> Message:
    """Exchange, Reply and Rumor messages as the codec encodes them: all acceptable if
    `valid`, else some with timestamps too far ahead, keys too long or values not JSON."""
    now = wall_ms()
    sender = draw(members())
    if draw(st.booleans()):
        items = []
        for _ in range(draw(st.integers(0, 3))):
            entry = draw(entries(draw(origins), now, valid))
            items.append(RumorItem(entry, Timestamp(0, 0)))
        return Rumor.of(sender, tuple(items), ())
    deltas = []
    for origin in draw(st.lists(origins, max_size=2, unique=True)):
        es = sorted(draw(st.lists(entries(origin, now, valid), max_size=3)), key=lambda e: e.ts)
        upto = es[-1].ts if es else Timestamp(now - 5, 0)
        deltas.append(WriterDelta(origin, Timestamp(0, 0), upto, tuple(es)))
    digest = draw(st.dictionaries(origins, timestamps(now, valid), max_size=2))
    kind = draw(st.sampled_from([Exchange, Reply]))
    return kind(sender, digest, tuple(draw(st.lists(members(), max_size=2))), tuple(deltas))


def encode(message: Message) -> bytes:
    try:
        return CODEC.encode(message)
    except UnicodeEncodeError:  # a lone surrogate from st.text: not sendable as UTF-8
        assume(False)
        raise


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a node of a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


# -- the properties -----------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=512), header_values=st.lists(st.text(max_size=70), min_size=4, max_size=4),
       real_key=st.booleans())
def test_arbitrary_bytes_and_headers(state: SharedState, body: bytes, header_values: list[str],
                                     real_key: bool) -> None:
    headers = dict(zip(HEADERS, header_values, strict=True))
    if real_key:  # get past the key look-up, into the checks behind it
        headers["x-gossip-key"] = key_id(KEY)
    assert not feed(state, body, headers)


@FUZZ
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_signed_by_a_key_holder(state: SharedState, body: bytes) -> None:
    feed(state, body, signed(body))


@FUZZ
@given(message=messages(valid=True))
def test_valid_signed_messages_are_applied(state: SharedState, message: Message) -> None:
    """A valid signed message is taken, and exactly what `carried` says of it is applied: a delta
    only where it follows on from our history (R10), nothing our watermark or collections
    make stale (R7b)."""
    body = encode(message)
    assert feed(state, body, signed(body)), "a valid, signed message was refused"


@FUZZ
@given(message=messages())
def test_signed_messages_breaking_a_limit_are_refused_whole(state: SharedState, message: Message) -> None:
    body = encode(message)
    feed(state, body, signed(body))


@FUZZ
@given(message=messages(), data=st.data(), resign=st.booleans())
def test_byte_flips(state: SharedState, message: Message, data: st.DataObject, resign: bool) -> None:
    original = encode(message)
    body = bytearray(original)
    headers = signed(original)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] ^= data.draw(st.integers(1, 255))
    assume(body != original)  # two flips of one byte can cancel out
    if resign:  # a key holder sending garbage reaches the decoder
        headers = signed(bytes(body))
    accepted = feed(state, bytes(body), headers)
    assert resign or not accepted, "an altered body passed the signature check"


@FUZZ
@given(message=messages(), data=st.data(), resign=st.booleans())
def test_truncations(state: SharedState, message: Message, data: st.DataObject, resign: bool) -> None:
    full = encode(message)
    body = full[: data.draw(st.integers(0, len(full) - 1))]
    headers = signed(body) if resign else signed(full)
    accepted = feed(state, body, headers)
    assert not accepted  # a strict prefix of a JSON object is never JSON


@FUZZ
@given(message=messages(), data=st.data())
def test_field_replacements(state: SharedState, message: Message, data: st.DataObject) -> None:
    doc = json.loads(encode(message))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(paths(doc))))
        doc = replace(doc, path, data.draw(json_values | st.just("\ud800")))  # and a lone surrogate
    try:
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        body = json.dumps(doc, separators=(",", ":")).encode()  # \ud800 escapes: a lone surrogate
    feed(state, body, signed(body))


@FUZZ
@given(message=messages(), skew=st.sampled_from([-1, 1]))
def test_signed_outside_the_window_or_replayed(state: SharedState, message: Message, skew: int) -> None:
    body = encode(message)
    window = int(CONFIG.replay_window * 1000)
    assert not feed(state, body, signed(body, at_ms=wall_ms() + skew * (window + 10_000)))
    headers = signed(body)
    feed(state, body, headers)
    before = snapshot(state)
    with pytest.raises(ReplayError):
        state.receive(body, headers)
    assert snapshot(state) == before


# -- what the fuzzing found, pinned -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-gossip-time", "\u00b2"), ("x-gossip-time", "9" * 5000), ("x-gossip-signature", "\u00e9" * 64)],
)
def test_odd_signature_headers_are_refused_not_crashed(state: SharedState, header: str, value: str) -> None:
    # were ValueError (int('²'), int of > 4300 digits) and TypeError (compare_digest on
    # non-ASCII text): a 500 from /gossip for anyone who knew a key id
    body = encode(Exchange(MemberInfo("p1", "http://127.0.0.1:1", 1, 0), {}, (), ()))
    assert not feed(state, body, {**signed(body), header: value})


@pytest.mark.parametrize("kind", [[], {}])
def test_an_unhashable_message_type_is_malformed(state: SharedState, kind: object) -> None:
    doc = json.loads(encode(Exchange(MemberInfo("p1", "http://127.0.0.1:1", 1, 0), {}, (), ())))
    body = json.dumps({**doc, "type": kind}).encode()  # was a TypeError in the decoder
    assert not feed(state, body, signed(body))


@pytest.mark.parametrize("ttl", [1e308, float("inf"), float("nan"), 1e13, 0.0, -1.0])
def test_a_ttl_the_codec_cannot_carry_is_refused(state: SharedState, ttl: float) -> None:
    # 1e308 was an OverflowError (500 from /set); 1e13 s gave an expiry above 2**53 that
    # every peer's decoder refuses, so no message carrying the entry could be delivered
    with pytest.raises(InvalidValue):
        state.set("ttl", 1, ttl=ttl)
    assert state.entry("ttl") is None
