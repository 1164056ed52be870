"""The clock check (node/server/clockcheck.py), in-process on fake clocks: each peer's offset from
the times stamped on its messages, and the judgement whether this node may acknowledge a
write (its wall clock, and its hybrid logical clock, against the other hosts' clocks)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from node.server.clockcheck import (
    AHEAD,
    ALONE,
    BEHIND,
    HLC_AHEAD,
    OK,
    REBUILD_EVERY,
    SAMPLE_SPAN,
    UNCHECKED,
    ClockCheck,
    PeerOffset,
    host_of,
    judge,
)

EPOCH = 1_700_000_000_000  # ms: the true time when the test starts
MAX_OFFSET = 2.0


@dataclass
class World:
    """True time, and this node's clocks: its wall clock `skew` seconds off the truth,
    its monotonic clock counting from an arbitrary origin, its HLC where it was left."""

    true: float = 0.0  # seconds since EPOCH
    skew: float = 0.0
    hlc: int = 0
    origin: float = 12_345.0  # the monotonic clock's reading at true time 0
    check: ClockCheck = field(init=False)

    def __post_init__(self) -> None:
        self.check = ClockCheck("http://10.0.0.1:7946", MAX_OFFSET, lambda: self.hlc, wall_ms=self.wall_ms,
                                monotonic=self.monotonic)

    def wall_ms(self) -> int:
        return EPOCH + round((self.true + self.skew) * 1000)

    def monotonic(self) -> float:
        return self.origin + self.true

    def exchange(self, peer: str, their_skew: float, there: float = 0.005, back: float = 0.005) -> None:
        """We send `peer` a request; it takes `there` seconds to arrive, the answer (stamped
        with the peer's wall time, `their_skew` off the truth) `back` seconds to return."""
        sent = self.monotonic()
        self.true += there
        stamped = EPOCH + round((self.true + their_skew) * 1000)
        self.true += back
        self.check.observe(peer, stamped, self.monotonic(), sent)

    def request(self, peer: str, their_skew: float, delay: float = 0.005) -> None:
        """A peer's request reaches us `delay` seconds after it stamped it."""
        stamped = EPOCH + round((self.true + their_skew) * 1000)
        self.true += delay
        self.check.observe(peer, stamped, self.monotonic())

    def offset(self, peer: str) -> PeerOffset:
        return next(p for p in self.check.offsets() if p.address == peer)


def test_host_of_takes_the_host_part_of_the_advertised_address() -> None:
    assert host_of("http://10.0.0.3:7946") == "10.0.0.3"
    assert host_of("https://Node-2.example:443/") == "node-2.example"
    assert host_of("http://[fd00::3]:7946") == "fd00::3"
    assert host_of("not a url") == "not a url"


def test_a_round_trip_bounds_the_peers_offset_from_both_sides() -> None:
    world = World()
    world.exchange("http://10.0.0.2:7946", their_skew=-3.0, there=0.010, back=0.030)
    p = world.offset("http://10.0.0.2:7946")
    assert p.host == "10.0.0.2"
    # The peer stamped 3 s behind the truth; our clock is true: -3.0, within the round trip.
    assert p.uncertainty == pytest.approx(0.020, abs=0.001)  # half the 40 ms round trip
    assert p.offset - p.uncertainty <= -3.0 <= p.offset + p.uncertainty
    assert p.least == pytest.approx(-3.030, abs=0.001)  # its least: the answer's way back counted against it


def test_the_quickest_exchanges_tighten_the_estimate() -> None:
    world = World()
    peer = "http://10.0.0.2:7946"
    world.exchange(peer, -1.0, there=0.200, back=0.010)  # a slow request
    world.exchange(peer, -1.0, there=0.010, back=0.300)  # a slow answer
    world.exchange(peer, -1.0, there=0.002, back=0.002)
    p = world.offset(peer)
    assert p.uncertainty is not None and p.uncertainty <= 0.0025
    assert p.offset == pytest.approx(-1.0, abs=0.003) and -1.005 < p.least <= -1.0


def test_a_request_alone_bounds_the_offset_from_below() -> None:
    world = World(skew=0.0)
    world.request("http://10.0.0.2:7946", their_skew=-4.0, delay=0.050)
    p = world.offset("http://10.0.0.2:7946")
    assert p.uncertainty is None and p.least == pytest.approx(-4.050, abs=0.001) and p.least <= -4.0


def test_a_peer_whose_clock_moves_is_measured_again_at_once() -> None:
    world = World()
    peer = "http://10.0.0.2:7946"
    for _ in range(5):
        world.exchange(peer, -4.0)
    assert world.offset(peer).offset == pytest.approx(-4.0, abs=0.01)
    world.exchange(peer, 0.0)  # its clock fixed: the new bounds contradict the old, which go
    assert world.offset(peer).offset == pytest.approx(0.0, abs=0.01)


def test_a_step_of_our_own_wall_clock_shows_without_a_new_message() -> None:
    world = World()
    for peer in ("http://10.0.0.2:7946", "http://10.0.0.3:7946"):
        world.exchange(peer, 0.0)
    assert world.check.judge().code == OK
    world.skew = 4.4  # someone sets this host's clock 4.4 s ahead: our bounds are on the monotonic clock
    judgement = world.check.judge()
    assert judgement.code == AHEAD and judgement.ahead == pytest.approx(4.4, abs=0.02)
    assert world.check.refusal() is not None


def test_bounds_older_than_the_span_are_let_go() -> None:
    world = World()
    peer = "http://10.0.0.2:7946"
    world.request(peer, -1.0, delay=0.001)  # a tight lower bound: -1.001
    world.true += SAMPLE_SPAN + 1
    world.request(peer, -1.5, delay=0.001)  # the peer's clock went back half a second since
    assert world.offset(peer).least == pytest.approx(-1.501, abs=0.002)


def test_a_skewed_node_refuses_writes_whatever_its_same_host_sibling_says() -> None:
    world = World(skew=4.43)
    world.exchange("http://10.0.0.1:7947", 4.43)  # the sibling, on our host: same clock
    assert world.check.judge().code == ALONE  # (nothing to judge by: no other host)
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.exchange("http://10.0.0.3:7946", 0.0)
    world.exchange("http://10.0.0.3:7947", 0.0)
    judgement = world.check.judge()
    assert judgement.code == AHEAD and judgement.hosts == 2
    assert judgement.ahead == pytest.approx(4.43, abs=0.02)
    assert {p.host for p in judgement.peers} == {"10.0.0.2", "10.0.0.3"}  # the sibling does not count
    refusal = world.check.refusal()
    assert refusal is not None and "4.4" in refusal and "max_offset (2 s)" in refusal
    assert "fix this host's clock" in refusal and "--accept-writes-when-refused" in refusal


def test_the_healthy_nodes_take_writes_beside_a_skewed_host() -> None:
    world = World(skew=0.0)
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.exchange("http://10.0.0.3:7946", 4.43)  # the skewed host, both its nodes
    world.exchange("http://10.0.0.3:7947", 4.43)
    judgement = world.check.judge()
    assert judgement.code == OK and abs(judgement.ahead or 0) < 0.02
    assert world.check.refusal() is None


def test_with_two_hosts_the_one_ahead_refuses() -> None:
    ahead, behind = World(skew=3.0), World(skew=0.0)
    ahead.exchange("http://10.0.0.2:7946", 0.0)
    behind.exchange("http://10.0.0.2:7946", 3.0)
    assert ahead.check.judge().code == AHEAD
    assert behind.check.judge().code == OK  # (its clock is what the other's writes are refused by)


def test_a_node_behind_the_cluster_is_warned_and_takes_writes() -> None:
    world = World(skew=-3.0)
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.exchange("http://10.0.0.3:7946", 0.0)
    judgement = world.check.judge()
    assert judgement.code == BEHIND and not judgement.refuses
    assert "3.0" in judgement.detail and "behind" in judgement.detail
    assert world.check.refusal() is None


def test_within_max_offset_writes_are_taken() -> None:
    world = World(skew=1.5)
    world.exchange("http://10.0.0.2:7946", 0.0)
    judgement = world.check.judge()
    assert judgement.code == OK and judgement.ahead == pytest.approx(1.5, abs=0.02)


def test_a_node_with_other_hosts_to_compare_with_takes_no_write_before_it_has() -> None:
    world = World()
    world.check.expect(["http://10.0.0.1:7947"])  # a seed on our own host: nothing to compare with
    assert world.check.judge().code == ALONE and world.check.refusal() is None
    world.check.expect(["http://10.0.0.2:7946"])
    judgement = world.check.judge()
    assert judgement.code == UNCHECKED and judgement.refuses
    refusal = world.check.refusal()
    assert refusal is not None and "not compared its clock" in refusal
    world.exchange("http://10.0.0.1:7947", 0.0)  # a sibling answered: still not compared
    assert world.check.judge().code == UNCHECKED
    world.exchange("http://10.0.0.2:7946", 0.0)
    assert world.check.judge().code == OK


def test_escape_hatch_judges_but_never_refuses() -> None:
    world = World(skew=10.0)
    world.check.accept_anyway = True
    world.check.expect(["http://10.0.0.2:7946"])
    assert world.check.refusal() is None  # (unchecked)
    world.exchange("http://10.0.0.2:7946", 0.0)
    assert world.check.judge().code == AHEAD and world.check.refusal() is None


def test_an_hlc_restored_ahead_of_the_wall_clock_holds_writes_until_it_has_caught_up() -> None:
    world = World(skew=0.0)
    world.hlc = world.wall_ms() + 4_430  # the data directory was written under a clock 4.43 s ahead
    world.check.restored_wall = world.hlc
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.exchange("http://10.0.0.3:7946", 0.0)
    judgement = world.check.judge()
    assert judgement.code == HLC_AHEAD and judgement.refuses
    assert judgement.hlc_lead == pytest.approx(4.42, abs=0.02) and abs(judgement.ahead or 0) < 0.02
    assert "restored from the data directory" in judgement.detail and "4.4" in judgement.detail
    assert "about 2.4 s more" in judgement.detail, judgement.detail
    world.true += 2.3
    assert world.check.judge().code == HLC_AHEAD
    world.true += 0.2  # the wall clock within max_offset of the HLC: writes taken
    assert world.check.judge().code == OK and world.check.refusal() is None


def test_the_hlc_lead_adds_to_a_wall_clock_ahead_within_max_offset() -> None:
    world = World(skew=1.0)
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.hlc = world.wall_ms() + 1_500  # raised by a peer's timestamps: 1.0 + 1.5 > 2
    judgement = world.check.judge()
    assert judgement.code == HLC_AHEAD and "raised by timestamps taken from peers" in judgement.detail
    assert "1.00 s ahead of the cluster's" in judgement.detail, judgement.detail


def test_peers_no_longer_known_are_forgotten_once_unheard() -> None:
    world = World(skew=5.0)
    world.exchange("http://10.0.0.2:7946", 0.0)
    world.check.expect([])  # it left (or was forgotten), but was heard just now: kept for a while
    assert world.check.judge().code == AHEAD
    world.true += SAMPLE_SPAN + 1
    world.check.expect([])
    assert world.check.judge().code == ALONE


def offset(host: str, seconds: float, address: str = "") -> PeerOffset:
    return PeerOffset(address or f"http://{host}:1", host, seconds, 0.001, seconds - 0.001)


def test_judge_takes_each_host_once_and_the_median_over_hosts() -> None:
    # A host with many nodes counts once: three nodes of one host behind us do not outvote two hosts.
    many = [offset("b", -5.0, f"http://b:{i}") for i in range(3)]
    peers = [*many, offset("c", 0.0), offset("d", 0.0)]
    assert judge(peers, "a", True, 0.0, MAX_OFFSET).code == OK
    # Most hosts behind us by 5 s: our clock runs ahead of the cluster's.
    peers = [offset("b", -5.0), offset("c", -5.0), offset("d", 0.0)]
    judgement = judge(peers, "a", True, 0.0, MAX_OFFSET)
    assert judgement.code == AHEAD and judgement.ahead == pytest.approx(5.001) and judgement.hosts == 3
    # Our own host's other nodes are left out whatever they say.
    assert judge([offset("a", 0.0), offset("b", -5.0)], "a", True, 0.0, MAX_OFFSET).code == AHEAD
    assert judge([offset("a", -5.0)], "a", False, 0.0, MAX_OFFSET).code == ALONE


def test_the_offset_in_the_text_is_never_minus_zero() -> None:
    for lead, ahead in ((4.43, 0.0), (4.43, -0.0001), (2.5, 0.0004)):
        judgement = judge([offset("b", -ahead)], "a", True, lead, MAX_OFFSET, restored=True)
        assert judgement.code == HLC_AHEAD and "-0.0" not in judgement.detail, judgement.detail


def test_the_quick_answer_to_a_write_agrees_with_the_judgement() -> None:
    """refusal() judges each write from a summary kept per host; judge() from every peer."""
    rng = random.Random(7)
    for case in range(300):
        world = World(skew=rng.uniform(-4, 6))
        world.hlc = world.wall_ms() + rng.choice((0, rng.randint(0, 4000)))
        hosts = rng.randint(1, 7)
        for h in range(hosts):
            skew = rng.uniform(-4, 4)
            for n in range(rng.randint(1, 3)):
                world.exchange(f"http://10.0.1.{h}:{7000 + n}", skew, there=rng.uniform(0, 0.05))
        world.true += REBUILD_EVERY
        judgement = world.check.judge()
        assert (world.check.refusal() is not None) == judgement.refuses, (case, judgement)
