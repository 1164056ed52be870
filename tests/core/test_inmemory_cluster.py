"""Many GossipProtocol nodes in one process, no sockets, every message through the codec.

20 nodes, random writes and deletes to overlapping
keys at random nodes, some messages lost; once writes stop, every node's state is identical
and equals the last-writer-wins result computed from the write log.
Each run is reproducible from its seed, which every failure message names.
"""

from __future__ import annotations

import pytest

from gossip.config import Config
from tests.memnet import MemNet, address_of

SEEDS = [1, 2, 3, 4, 5]
NODES = 20
KEYS = [f"k{i}" for i in range(15)]
WRITE_ROUNDS = 25
MAX_ROUNDS = 200
DROP = 0.15


def random_workload(net: MemNet, write_rounds: int = WRITE_ROUNDS) -> None:
    """Writes and deletes at random nodes, interleaved with rounds. Writes between two
    rounds share one virtual millisecond, so equal timestamps from different nodes occur."""
    rng = net.rng
    serial = 0
    assert write_rounds > 0
    for _ in range(write_rounds):
        net.run_round()
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(net.nodes))
            key = rng.choice(KEYS)
            if rng.random() < 0.25:
                net.delete(i, key)
            else:
                serial += 1
                value = rng.choice([serial, f"v{serial}", {"n": serial, "by": i}, [serial]])
                net.write(i, key, value)
        net.pump()  # the last writes are still spreading when the workload ends


def describe_difference(net: MemNet) -> str:
    expected = net.lww_expectation()
    lines = []
    for node in net.nodes:
        live = node.live(net.now_ms)
        wrong = sorted(k for k in set(live) | set(expected) if live.get(k) != expected.get(k))
        if wrong:
            lines.append(f"  {node.id}: differs on {wrong[:5]}")
    return "\n".join(lines[:10])


def assert_converged_to_lww(net: MemNet, seed: int) -> None:
    context = f"seed={seed} eager_push={net.config.eager_push}"
    rounds = net.run_until(net.agree, MAX_ROUNDS)
    assert rounds is not None, (
        f"[{context}] nodes still disagree after {MAX_ROUNDS} rounds with no writes:\n"
        + describe_difference(net)
    )
    expected = net.lww_expectation()
    assert expected, f"[{context}] the workload left no live key; the test proves little"
    hashes = {node.state_hash(net.now_ms) for node in net.nodes}
    assert len(hashes) == 1, f"[{context}] state hashes differ: {hashes}"
    for node in net.nodes:
        assert node.live(net.now_ms) == expected, (
            f"[{context}] {node.id} agrees with the others but not with the LWW expectation "
            f"from the write log:\n" + describe_difference(net)
        )
        for key in KEYS:
            assert node.read(key, net.now_ms) == expected.get(key), f"[{context}] {key}"
    assert not net.traffic.rejections, f"[{context}] {net.traffic.rejections[:3]}"
    print(
        f"[{context}] {len(net.log)} writes/deletes, {len(expected)} live keys, "
        f"agreed {rounds} rounds after writes stopped; messages {dict(net.traffic.messages)}, "
        f"dropped {dict(net.traffic.dropped)}"
    )


def digests_agree(net: MemNet) -> bool:
    first = dict(net.nodes[0].store.watermarks)
    return all(dict(node.store.watermarks) == first for node in net.nodes)


@pytest.mark.parametrize("eager_push", [True, False], ids=["eager", "rounds-only"])
@pytest.mark.parametrize("seed", SEEDS)
def test_twenty_nodes_converge_to_lww_of_the_write_log(seed: int, eager_push: bool) -> None:
    skews = [0, 0, 0, 0, -40, 25, 300]  # small clock skews, well inside max_offset
    config = Config.for_tests(eager_push=eager_push)
    net = MemNet(
        NODES,
        seed=seed,
        config=config,
        drop=DROP,
        skews_ms=[skews[(seed * 7 + i) % len(skews)] for i in range(NODES)],
    )
    random_workload(net)
    assert net.traffic.dropped, f"[seed={seed}] no message was dropped; the test proves little"
    assert_converged_to_lww(net, seed)

    # digests (per-writer watermarks) agree too, so idle exchanges carry no entries
    rounds = net.run_until(lambda: digests_agree(net), MAX_ROUNDS)
    assert rounds is not None, f"[seed={seed}] digests never agreed: " + "; ".join(
        f"{n.id}={dict(n.store.watermarks)}" for n in net.nodes[:3]
    )
    writers = {entry.origin for entry in net.log}
    for writer in writers:
        last = max(e.ts for e in net.log if e.origin == writer)
        assert net.nodes[0].store.watermark(writer) == last, f"[seed={seed}] {writer}"

    # agreement is stable: more rounds change nothing
    before = net.nodes[0].state_hash(net.now_ms)
    for _ in range(3):
        net.run_round()
    assert {n.state_hash(net.now_ms) for n in net.nodes} == {before}, f"[seed={seed}]"


@pytest.mark.parametrize("seed", SEEDS)
def test_concurrent_writes_in_the_same_millisecond_resolve_by_node_id(seed: int) -> None:
    """Every node writes the same key at the same virtual millisecond with a fresh clock:
    equal timestamps, so the highest node id wins everywhere."""
    net = MemNet(NODES, seed=seed, drop=DROP)
    entries = [net.write(i, "same", f"from n{i:02d}") for i in range(NODES)]
    assert len({e.ts for e in entries}) == 1, "the writes were meant to tie on ts"
    net.pump()
    assert_converged_to_lww(net, seed)
    winner = net.nodes[0].read("same", net.now_ms)
    assert winner is not None and winner.origin == max(e.origin for e in entries)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_node_told_one_seed_learns_every_member(seed: int) -> None:
    # a chain: node i knows only node i-1, so most nodes must learn others second hand
    net = MemNet(
        NODES,
        seed=seed,
        drop=DROP,
        seeds_of=lambda i: [] if i == 0 else [address_of(i - 1)],
    )
    rounds = net.run_until(net.everyone_knows_everyone, MAX_ROUNDS)
    assert rounds is not None, (
        f"[seed={seed}] membership incomplete after {MAX_ROUNDS} rounds: "
        + (", ".join(f"{n.id} knows {len(n.membership.members)}" for n in net.nodes))
    )
    for node in net.nodes:
        known = {m.info.address for m in node.membership.members.values()}
        assert known == {address_of(i) for i in range(NODES)} - {node.membership.me.address}
    print(f"[seed={seed}] chain of {NODES} seeds: full membership after {rounds} rounds")


@pytest.mark.parametrize("seed", SEEDS)
def test_star_seeded_nodes_learn_every_member(seed: int) -> None:
    net = MemNet(NODES, seed=seed, drop=DROP)  # everyone told only node 0
    rounds = net.run_until(net.everyone_knows_everyone, MAX_ROUNDS)
    assert rounds is not None, f"[seed={seed}] membership incomplete after {MAX_ROUNDS} rounds"


def test_runs_are_reproducible_from_the_seed() -> None:
    def run() -> tuple[object, ...]:
        net = MemNet(8, seed=42, drop=DROP)
        random_workload(net, write_rounds=5)
        return (
            net.nodes[3].state_hash(net.now_ms),
            tuple(net.traffic.messages.items()),
            tuple(net.traffic.dropped.items()),
        )

    assert run() == run()


def test_ttl_entries_expire_on_every_node() -> None:
    net = MemNet(5, seed=7)
    entry = net.write(2, "session", "abc", ttl=10.0)
    net.write(1, "forever", 1)
    net.pump()
    rounds = net.run_until(net.agree, MAX_ROUNDS)
    assert rounds is not None
    assert entry.expires_at is not None
    for node in net.nodes:
        assert node.read("session", entry.expires_at - 1) is not None
        assert node.read("session", entry.expires_at) is None
        assert set(node.live(entry.expires_at)) == {"forever"}
    assert net.lww_expectation(entry.expires_at).keys() == {"forever"}


@pytest.mark.parametrize("seed", SEEDS)
def test_eager_push_alone_reaches_every_node(seed: int) -> None:
    """With membership known and no loss, a write reaches all nodes by pushes alone,
    before any further round, in one message per other node."""
    net = MemNet(NODES, seed=seed)
    assert net.run_until(net.everyone_knows_everyone, MAX_ROUNDS) is not None
    rumors_before = net.traffic.messages["Rumor"]
    entry = net.write(seed % NODES, "fresh", {"seed": seed})
    net.pump()
    holders = [n.id for n in net.nodes if n.read("fresh", net.now_ms) == entry]
    assert len(holders) == NODES, f"[seed={seed}] only {holders} got the push"
    assert net.traffic.messages["Rumor"] - rumors_before == NODES - 1, f"[seed={seed}]"
