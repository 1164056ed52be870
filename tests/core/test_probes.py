"""Direct probes (R23): the suspicion timeout, refutation, which judgement wins (R24), the
wire format, and a crash seen dead within seconds in the simulator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.codec import Codec
from gossip.config import Config
from gossip.errors import ConfigError, IncompatibleMessage, MalformedMessage
from gossip.jsontext import dumps
from gossip.membership import ALIVE, DEAD, SUSPECT, MemberInfo, Membership
from gossip.probe_messages import ACK, NOTES, PING, PING_REQ, Note, Probe
from gossip.probes import Prober
from gossip.suspicion import Suspicion, confirmations_needed, suspicion_bounds_ms, timeout_ms
from simulations.detection import crash_run

T0 = 1_700_000_000_000
CONFIG = Config(probe_interval=1.0)


# -- the suspicion timeout ----------------------------------------------------------------


def test_timeout_scales_with_log10_of_the_cluster() -> None:
    assert suspicion_bounds_ms(CONFIG, 10) == (1000.0, 3000.0)
    assert suspicion_bounds_ms(CONFIG, 1000) == pytest.approx((3000.0, 9000.0))
    assert suspicion_bounds_ms(CONFIG, 10_000) == pytest.approx((4000.0, 12000.0))
    assert suspicion_bounds_ms(CONFIG, 2) == (1000.0, 3000.0)  # at least one log10 step


def test_confirmations_needed_fit_the_cluster() -> None:
    assert confirmations_needed(CONFIG, 1000) == CONFIG.suspicion_confirmations
    assert confirmations_needed(CONFIG, 3) == 1  # only one other member can confirm
    assert confirmations_needed(CONFIG, 2) == 0


@given(st.floats(1, 1e6), st.floats(1, 10), st.integers(0, 10), st.integers(0, 10))
def test_timeout_falls_from_longest_to_shortest(shortest: float, mult: float, c: int, needed: int) -> None:
    longest = shortest * mult
    t = timeout_ms(shortest, longest, c, needed)
    assert shortest <= t <= longest
    assert timeout_ms(shortest, longest, c + 1, needed) <= t
    assert timeout_ms(shortest, longest, 0, needed) == (longest if needed else shortest)
    assert timeout_ms(shortest, longest, needed, needed) == shortest


def test_only_new_witnesses_confirm() -> None:
    s = Suspicion(1, 0, T0, 1000, 3000, 2, first="a")
    assert s.deadline() == T0 + 3000
    assert not s.confirm("a")  # the first suspecter
    assert s.confirm("b") and not s.confirm("b")
    assert T0 + 1000 < s.deadline() < T0 + 3000
    assert s.confirm("c") and not s.confirm("d")  # enough already
    assert s.deadline() == T0 + 1000


# -- refutation and death, between pure probers ---------------------------------------------


def _prober(node: str, others: list[str], config: Config = CONFIG) -> Prober:
    membership = Membership(MemberInfo(node, f"sim://{node}", 1, 0), config)
    membership.merge([MemberInfo(o, f"sim://{o}", 1, 0) for o in others], T0)
    return Prober(config, membership, random.Random(node), T0)


def _deliver(probers: dict[str, Prober], outs: list[tuple[str, Probe]], now: int) -> None:
    """Deliver every message (and the answers) at once, as a lossless instant network."""
    while outs:
        address, message = outs.pop(0)
        target = probers.get(address.removeprefix("sim://"))
        if target is not None:
            outs.extend((o.address, o.message) for o in target.handle(message, now))


# R23: a suspect hears the suspicion on the next message to it, refutes it with a newer
# incarnation, and the refutation clears it.
def test_a_suspected_member_refutes_and_is_alive_again() -> None:
    ids = ["a", "b", "c", "d"]
    probers = {i: _prober(i, [o for o in ids if o != i]) for i in ids}
    a, b = probers["a"], probers["b"]
    outs: list[tuple[str, Probe]] = []
    note = Note(SUSPECT, "b", 1, 0, "c")
    for o in a.handle(Probe(NOTES, "c", "sim://c", 1, 0, notes=(note,)), T0):
        outs.append((o.address, o.message))
    assert "b" in a.suspicions and a.membership.members["b"].status == SUSPECT
    # a's next message to b carries the suspicion; b refutes, and its answer clears it.
    ping = a.verdicts.message("sim://b", PING, seq=99, target="b")
    assert note.member in {n.member for n in ping.message.notes}
    _deliver(probers, [(ping.address, ping.message)], T0 + 10)
    assert b.incarnation == 1 and b.counters.refuted == 1 and b.health == 1
    assert "b" not in a.suspicions
    assert a.membership.members["b"].status == ALIVE
    # An older suspicion (incarnation 0) no longer holds.
    a.handle(Probe(NOTES, "d", "sim://d", 1, 0, notes=(Note(SUSPECT, "b", 1, 0, "d"),)), T0 + 20)
    assert "b" not in a.suspicions


# R23: no refutation by the deadline (the last check unanswered): dead, and the dead note spreads.
def test_an_unrefuted_suspicion_ends_in_death_which_spreads() -> None:
    ids = ["a", "b", "c"]
    a = _prober("a", ["b", "c"])
    a.handle(Probe(NOTES, "c", "sim://c", 1, 0, notes=(Note(SUSPECT, "b", 1, 0, "c"),)), T0)
    deadline = a.suspicions["b"].deadline()
    assert deadline - T0 == 3000  # one confirmation possible in 3 nodes, none came: the longest
    assert a.next_due() <= deadline
    now = T0
    while a.membership.members["b"].status != DEAD and now <= deadline + 1000:
        a.tick(now)  # its probes go unanswered (no network): its health worsens, its last check stretches
        now += 100
    assert T0 + 1000 <= now <= deadline + 1000
    assert a.membership.members["b"].status == DEAD and a.dead["b"] == (1, 0)
    c = _prober("c", ["a", "b"])
    c.handle(Probe(ACK, "a", "sim://a", 1, 0, notes=a.verdicts.take_notes(6)), deadline)
    assert c.membership.members["b"].status == DEAD
    assert ids  # (three members)


def test_a_probe_without_answers_suspects_and_helpers_are_asked() -> None:
    a = _prober("a", ["b", "c", "d"])
    due = a.next_due()
    outs = a.tick(due)
    pings = [o for o in outs if o.message.kind == PING]
    assert len(pings) == 1
    target = pings[0].message.target
    outs = a.tick(a.next_due())  # the probe timeout: ask the others
    reqs = [o for o in outs if o.message.kind == PING_REQ]
    assert {o.message.target for o in reqs} == {target} and len(reqs) == 2
    outs = a.tick(a.next_due())  # the interval ends without an ack: suspect, and tell it
    assert a.membership.members[target].verdict == SUSPECT
    assert any(o.message.kind == NOTES and o.address == f"sim://{target}" for o in outs)
    assert a.health == 1  # the helpers sent no nack either: the fault may be ours


# R23: a node whose ticks come over two intervals apart suspects nobody for its own stop.
def test_a_node_that_was_stopped_blames_nobody_for_it() -> None:
    a = _prober("a", ["b", "c", "d"])
    a.handle(Probe(NOTES, "c", "sim://c", 1, 0, notes=(Note(SUSPECT, "b", 1, 0, "c"),)), T0)
    a.tick(a.next_due())  # a probe goes out ...
    assert len(a._probing) == 1
    later = T0 + 20_000  # ... and the process is stopped for 20 s
    a.tick(later)
    assert a.counters.stalls == 1 and a.health == 1
    assert [m.verdict for m in a.membership.members.values()].count(SUSPECT) == 1  # b's alone
    assert a.suspicions["b"].deadline() > later  # its refutation may have been lost meanwhile


# R24: a probe dead stands until a newer incarnation or generation.
def test_a_restarted_member_sheds_the_old_lifes_verdict() -> None:
    a = _prober("a", ["b", "c"])
    a.handle(Probe(NOTES, "c", "sim://c", 1, 0, notes=(Note(DEAD, "b", 1, 5, "c"),)), T0)
    assert a.membership.members["b"].status == DEAD
    a.membership.merge([MemberInfo("b", "sim://b", 2, 0)], T0 + 1)
    assert a.membership.members["b"].status == ALIVE


# -- the wire -------------------------------------------------------------------------------


def test_probe_messages_round_trip() -> None:
    codec = Codec(CONFIG)
    notes = (Note(SUSPECT, "b", 7, 2, "c"), Note(ALIVE, "d", 1, 0, "d"), Note(DEAD, "e", 3, 9, "a"))
    for message in (
        Probe(PING, "a", "http://a:1", 5, 1, 42, "b", "", notes),
        Probe(PING_REQ, "a", "http://a:1", 5, 1, 43, "b", "http://b:2"),
        Probe(ACK, "a", "http://a:1", 5, 0, 44),
        Probe(NOTES, "a", "http://a:1", 5, 0, 0, notes=notes),
    ):
        assert codec.decode_probe(codec.encode_probe(message)) == message


@pytest.mark.parametrize("change, error", [
    ({"v": 2}, IncompatibleMessage),
    ({"cluster": "other"}, IncompatibleMessage),
    ({"type": "exchange"}, MalformedMessage),
    ({"kind": "pong"}, MalformedMessage),
    ({"from": ["a", "http://a:1", 5]}, MalformedMessage),
    ({"from": ["a", "http://a:1", -1, 0]}, MalformedMessage),
    ({"seq": 2**53}, MalformedMessage),
    ({"seq": True}, MalformedMessage),
    ({"target": []}, MalformedMessage),
    ({"target": ["b", "http://b:2"]}, MalformedMessage),  # a ping names only the member
    ({"notes": [["maybe", "b", 1, 0, "c"]]}, MalformedMessage),
    ({"notes": [["dead", "", 1, 0, "c"]]}, MalformedMessage),
    ({"notes": [["dead", "b", 1, 0]]}, MalformedMessage),
    ({"notes": [["dead", "b", 1, 0, "c"]] * 17}, MalformedMessage),
    ({"notes": {}}, MalformedMessage),
])  # fmt: skip
def test_bad_probe_messages_are_refused(change: dict[str, object], error: type[Exception]) -> None:
    codec = Codec(CONFIG)
    body = {"v": 3, "cluster": "default", "type": "probe", "kind": "ping", "from": ["a", "http://a:1", 5, 0],
            "seq": 1, "notes": [], "target": ["b"], **change}  # fmt: skip
    with pytest.raises(error):
        codec.decode_probe(dumps(body))


def test_undecodable_and_misplaced_fields_are_refused() -> None:
    codec = Codec(CONFIG)
    with pytest.raises(MalformedMessage):
        codec.decode_probe(b"[1,")
    body = {"v": 3, "cluster": "default", "type": "probe", "kind": "ack", "from": ["a", "http://a:1", 5, 0],
            "seq": 1, "notes": []}  # fmt: skip
    assert codec.decode_probe(dumps(body)).kind == ACK
    with pytest.raises(MalformedMessage):  # an ack has no target
        codec.decode_probe(dumps({**body, "target": ["b"]}))


def test_probe_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        Config(probe_interval=1.0, probe_timeout=1.0)
    with pytest.raises(ConfigError):
        Config(probe_interval=-1.0)
    with pytest.raises(ConfigError):
        Config(indirect_probes=-1)
    with pytest.raises(ConfigError):
        Config(probe_interval=1.0, suspicion_max_mult=0.5)
    assert Config(probe_interval=1.0).indirect_probes == 3


# R24: the status is the graver of phi's and the probes' judgements: a probe dead stands
# while the heartbeat moves (a crashed node's last rounds still travel), and phi's dead
# stands while the probes find the member alive.
def test_the_graver_judgement_wins() -> None:
    a = _prober("a", ["b", "c"])
    a.handle(Probe(NOTES, "c", "sim://c", 1, 0, notes=(Note(DEAD, "b", 1, 0, "c"),)), T0)
    a.membership.merge([MemberInfo("b", "sim://b", 1, 7)], T0 + 10)  # a newer heartbeat, same life
    assert a.membership.members["b"].status == DEAD and a.membership.members["b"].verdict == DEAD
    silent = T0 + 600_000  # c silent for ten minutes: phi calls it dead, the probes do not
    a.membership.update(silent)
    assert a.membership.members["c"].verdict == ALIVE and a.membership.members["c"].status == DEAD
    a.membership.judge("c", SUSPECT, silent, "a test")
    assert a.membership.members["c"].status == DEAD  # still phi's: the graver


# -- in the simulator -------------------------------------------------------------------


# R23: at N = 100 and interval 1 s, a crash is seen dead by every other node in under 6 s
# of virtual time, and no live member is marked suspect or dead meanwhile.
def test_a_crash_in_100_nodes_is_seen_dead_within_seconds() -> None:
    run = crash_run(100, seed=1)
    assert run.undetected == 0 and len(run.detection) == 99
    assert max(run.detection) < 6.0
    assert run.marks.dead == 0 and run.marks.suspect == 0  # no live member marked meanwhile
    assert 1.9 < run.probes_per_node_s < 2.2  # a ping and its ack a second, plus the odd note
