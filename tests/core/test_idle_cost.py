"""Idle exchanges carry digests, not state; deltas are cut at the byte budget.

The bytes of one exchange (Exchange + Reply, as
encoded by the codec) between two agreeing nodes holding 10,000 keys are at most 2x those
of two nodes holding 10 keys. `pytest -s` prints both figures.
"""

from __future__ import annotations

import pytest

from gossip.config import Config
from gossip.messages import Exchange, Reply
from tests.memnet import MemNet, address_of, entry_count


def converged_pair(keys: int, seed: int = 11) -> MemNet:
    """Two nodes, each the writer of half the keys, synced by anti-entropy alone, with
    equal state and equal digests (so each knows the other lacks nothing)."""
    net = MemNet(2, seed=seed, config=Config.for_tests(eager_push=False))
    for n in range(keys):
        net.write(n % 2, f"key-{n:05d}", {"n": n, "payload": "x" * 20})
    rounds = net.run_until(
        lambda: (
            net.agree()
            and dict(net.nodes[0].store.watermarks) == dict(net.nodes[1].store.watermarks)
        ),
        50,
    )
    assert rounds is not None, f"two nodes with {keys} keys did not converge"
    assert len(net.nodes[0].live(net.now_ms)) == keys
    return net


def one_idle_exchange(net: MemNet) -> tuple[int, Exchange, Reply]:
    """Bytes of one Exchange from node 0 to node 1 plus node 1's Reply, and the two."""
    a, b = net.nodes
    net.advance(net.round_ms)
    outgoing = a.round(net.wall(0))
    assert [o.address for o in outgoing] == [address_of(1)]
    request = outgoing[0].message
    assert isinstance(request, Exchange)
    reply = b.handle(net.codec.decode(net.codec.encode(request)), net.wall(1))
    assert isinstance(reply, Reply)
    a.on_reply(address_of(1), net.codec.decode(net.codec.encode(reply)), net.wall(0))
    size = len(net.codec.encode(request)) + len(net.codec.encode(reply))
    return size, request, reply


def test_idle_exchange_does_not_grow_with_the_number_of_keys() -> None:
    """R8, R11: two nodes whose watermarks agree exchange digests only, whatever they hold."""
    sizes = {}
    for keys in (10, 10_000):
        net = converged_pair(keys)
        one_idle_exchange(net)  # digests are now known on both sides, whatever came before
        size, request, reply = one_idle_exchange(net)
        assert entry_count(request) == 0 and entry_count(reply) == 0, (
            f"an exchange between agreeing nodes with {keys} keys carried entries"
        )
        assert net.agree()
        sizes[keys] = size
    ratio = sizes[10_000] / sizes[10]
    print(
        f"\nidle exchange (Exchange + Reply) between two agreeing nodes: "
        f"{sizes[10]} bytes with 10 keys, {sizes[10_000]} bytes with 10,000 keys "
        f"(ratio {ratio:.2f})"
    )
    assert sizes[10_000] <= 2 * sizes[10], sizes


# -- catching up under a small delta budget -------------------------------------------------

SMALL = Config.for_tests(
    eager_push=False,
    delta_budget_bytes=4_096,
    max_body_bytes=10_240,  # consistent: the budget plus the members' share
    max_members_per_message=4,
    max_key_bytes=64,
    max_value_bytes=1_024,
)


@pytest.mark.parametrize(
    ("config", "drop"),
    [
        (SMALL, 0.0),
        (SMALL, 0.2),
        (SMALL.replace(max_entries_per_message=25), 0.0),
    ],
    ids=["byte-budget", "byte-budget-lossy", "entry-budget"],
)
def test_a_node_far_behind_catches_up_over_several_rounds(config: Config, drop: float) -> None:
    # nodes 0 and 2 know each other; node 1 knows nobody and nobody knows it
    """R8, R9: a node far behind gets the rest in deltas cut to the budgets, round after round,
    its watermarks moving as each lands."""
    net = MemNet(
        3,
        seed=5,
        config=config,
        drop=drop,
        seeds_of=lambda i: [address_of(0)] if i == 2 else [],
    )
    rng = net.rng
    for n in range(1_500):
        # overlapping keys: some entries are overwritten by the other writer
        writer = rng.choice([0, 2])
        net.write(writer, f"k{rng.randrange(1_000):04d}", {"n": n, "pad": "p" * rng.randrange(80)})
        if n % 100 == 0:
            net.run_round(nodes=[0, 2])
    for _ in range(3):
        net.run_round(nodes=[0, 2])
    net.delete(0, "k0001")
    net.delete(2, "k0002")
    reference = net.nodes[0]
    pair_agree = net.run_until(
        lambda: reference.state_hash(net.now_ms) == net.nodes[2].state_hash(net.now_ms), 200
    )
    assert pair_agree is not None
    assert len(net.nodes[1].store) == 0
    assert net.traffic.largest <= config.max_body_bytes

    net.nodes[1].membership.seeds = (address_of(0),)  # node 1 joins, far behind
    rounds = net.run_until(net.agree, 300)
    assert rounds is not None, (
        f"the late node did not catch up: holds {len(net.nodes[1].store)} of "
        f"{len(reference.store)} entries"
    )
    assert rounds > 3, f"caught up in {rounds} rounds: the budget never cut a message"
    assert net.nodes[1].live(net.now_ms) == net.lww_expectation()
    assert net.traffic.largest <= config.max_body_bytes, (
        f"a message of {net.traffic.largest} bytes exceeds max_body_bytes {config.max_body_bytes}"
    )
    assert net.traffic.most_entries <= config.max_entries_per_message
    print(
        f"\nlate node caught up on {len(reference.live(net.now_ms))} keys in {rounds} rounds; "
        f"largest message {net.traffic.largest} bytes (limit {config.max_body_bytes}), "
        f"most entries in one message {net.traffic.most_entries}"
    )


def test_every_delta_respects_the_byte_budget() -> None:
    """The entries of one delta, as encoded, fit the configured budget. (R9)"""
    net = MemNet(2, seed=3, config=SMALL, seeds_of=lambda i: [])
    for n in range(400):
        net.write(0, f"k{n:04d}", "v" * (n % 300))
    a, b = net.nodes
    # b tells a its (empty) digest; a's reply must be cut to the budget
    request = b.round(net.wall(1))
    assert request == []  # b knows nobody yet
    b.membership.seeds = (address_of(0),)
    (out,) = b.round(net.wall(1))
    reply = a.handle(net.codec.decode(net.codec.encode(out.message)), net.wall(0))
    assert reply is not None
    from gossip.wire_encode import entry_size  # the size the budget is counted in

    carried = sum(entry_size(e) for d in reply.delta for e in d.entries)
    assert 0 < carried <= SMALL.delta_budget_bytes
    assert len(net.codec.encode(reply)) <= SMALL.max_body_bytes
    b.on_reply(address_of(0), reply, net.wall(1))
    assert 0 < len(b.store) < len(a.store), "the first reply should carry only part"
