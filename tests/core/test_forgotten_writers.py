"""Writers forgotten (R20) still judge (R7c): a node keeps the horizon of each writer it
forgot, so that a peer restored from a snapshot older than the forgetting, which holds
part of that writer's history, is found behind instead of handing it back; the record is
saved with a snapshot and learnt by a node that catches up."""

from __future__ import annotations

import random

from gossip.clock import ZERO, Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.messages import HORIZON, Behind, Exchange, Reply
from gossip.protocol import GossipProtocol
from gossip.remembered import MAX_FORGOTTEN
from gossip.retired import Holdings, RetiredSet
from gossip.staleness import against_peer
from gossip.store import Store

T0 = 1_700_000_000_000
W = "gone#1"


def ts(wall: int) -> Timestamp:
    return Timestamp(T0 + wall, 0)


def forgot_w() -> Store:
    """A store that collected W up to 20, held all of it (to 30), and forgot it."""
    store = Store()
    store.raise_horizon(W, ts(20))
    store.retired.set(W, ts(30))
    store.forget_writer(W)
    return store


def test_forgetting_a_writer_keeps_its_horizon_apart() -> None:
    store = forgot_w()
    assert W not in store.horizon and store.coverage(W) == ZERO
    assert store.forgotten_writers == {W: ts(20)} and store.collected == ts(30)


def test_a_peer_holding_part_of_a_forgotten_writer_is_behind() -> None:
    """R20, R7c: the horizon kept for a writer we forgot judges a peer as our horizon does."""
    store = forgot_w()

    def judged(digest: dict[str, Timestamp], collected: Timestamp = ZERO) -> Behind | None:
        return against_peer(store, Holdings.guessed(digest, RetiredSet()), {}, collected)[0]

    assert judged({W: ts(10)}) == Behind(HORIZON, W, ts(20))  # a stale copy of W
    assert judged({W: ts(20)}) is None  # it holds what we collected
    assert judged({}, collected=ts(30)) is None  # it forgot W too
    assert judged({"other#1": ts(5)}, collected=ts(30)) is None


def test_the_record_is_bounded_newest_kept() -> None:
    store = Store()
    for i in range(MAX_FORGOTTEN + 5):
        store.remember_forgotten_writer(f"w{i}#1", ts(i))
    assert len(store.forgotten_writers) == MAX_FORGOTTEN
    newest = f"w{MAX_FORGOTTEN + 4}#1"
    assert "w0#1" not in store.forgotten_writers and newest in store.forgotten_writers


def node(name: str, seeds: tuple[str, ...] = ()) -> GossipProtocol:
    config = Config(phi_suspect=1e9, phi_dead=1e9, eager_push=False)
    return GossipProtocol(config, name, f"mem://{name}", random.Random(5), T0, seeds=seeds, generation=7)


def test_a_snapshot_keeps_the_forgotten_writers() -> None:
    first = node("a")
    first.store.remember_forgotten_writer(W, ts(20))
    codec = Codec(first.config)
    again = node("a")
    again.restore(codec.decode_snapshot(codec.encode_snapshot(first.snapshot())), T0 + 10)
    assert again.store.forgotten_writers == {W: ts(20)}


def test_a_node_catching_up_learns_them_with_the_roster() -> None:
    """R20, R7d: the pupil judges by what its source forgot, as its source does."""
    source, pupil = node("source"), node("pupil", seeds=("mem://source",))
    source.store.remember_forgotten_writer(W, ts(20))
    codec = Codec(source.config)
    now = T0
    for _ in range(10):
        if pupil.catchup is None:
            break
        now += 1_000
        for out in pupil.round(now):
            exchange = codec.decode(codec.encode(out.message))
            assert isinstance(exchange, Exchange)
            reply = source.handle(exchange, now)
            assert isinstance(reply, Reply)
            pupil.on_reply(out.address, codec.decode(codec.encode(reply)), now)  # type: ignore[arg-type]
    assert pupil.catchup is None, "the pupil did not finish catching up"
    assert pupil.store.forgotten_writers == {W: ts(20)}
