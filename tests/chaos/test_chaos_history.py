"""The chaos suite's history checker (chaos/history.py): one hand-built history per kind of
violation and per case it must accept, then histories drawn from a last-writer-wins model,
accepted as they are and caught once their final values are spoiled."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.evidence import RESTART, Evidence, kill_evidence, window
from chaos.faults import Fault
from chaos.history import Verdict, check, dump, load
from chaos.ops import Kind, Op, Outcome
from chaos.report import excused_cell
from chaos.run import Result
from chaos.setup import Setup
from gossip.clock import HybridClock, Timestamp
from gossip.store import JSON

NODES = ("n1", "n2", "n3")
KEYS = ("a", "b", "c")
MIX: tuple[Kind, ...] = ("write", "write", "delete", "read")
OUTCOMES: tuple[Outcome, ...] = ("ok", "ok", "ok", "fail", "unknown")
CLOSING_KINDS: tuple[Kind, ...] = ("write", "delete")
QUICK = settings(derandomize=True, deadline=None, max_examples=150)
FEW = settings(QUICK, max_examples=40)  # each example writes a file


def write(value: str, ts: int | None, node: str = "n1", at: float = 0.0, outcome: Outcome = "ok") -> Op:
    """A write through `node`; `ts` is the wall part of the acknowledged timestamp."""
    stamp = (ts, 0) if ts is not None else None
    return Op("write", "k", value, node, at, at + 0.5, outcome, stamp, node if stamp else None)


def delete(ts: int | None, node: str = "n1", at: float = 0.0, outcome: Outcome = "ok") -> Op:
    stamp = (ts, 0) if ts is not None else None
    return Op("delete", "k", None, node, at, at + 0.5, outcome, stamp, node if stamp else None)


def read(value: str | None, node: str = "n1", at: float = 0.0) -> Op:
    return Op("read", "k", value, node, at, at + 0.5, "ok")


def everywhere(value: str | None) -> dict[str, dict[str, JSON]]:
    return {node: {} if value is None else {"k": value} for node in NODES}


def kinds(verdict: Verdict, key: str = "k") -> list[str]:
    return [v.kind for v in verdict.violations if v.key == key]


# -- each violation, from a tiny history ---------------------------------------------------


def test_a_winning_write_missing_on_a_node_is_lost() -> None:
    finals = everywhere("v1") | {"n2": {}}
    verdict = check([write("v1", 10)], finals)
    assert kinds(verdict) == ["lost"] and not verdict.ok
    assert "n2" in verdict.violations[0].detail and '"v1"' in verdict.violations[0].detail


def test_a_value_older_than_the_winning_delete_is_resurrected() -> None:
    verdict = check([write("v1", 10), delete(12, node="n2", at=1)], everywhere("v1"))
    assert kinds(verdict) == ["resurrected"]
    assert "n1, n2, n3" in verdict.violations[0].detail


def test_a_value_older_than_the_winning_write_is_a_wrong_final() -> None:
    verdict = check([write("v1", 10), write("v2", 11, at=1)], everywhere("v1") | {"n3": {"k": "v2"}})
    assert kinds(verdict) == ["wrong_final"]
    assert verdict.violations[0].detail.startswith("n1, n2:")


def test_nodes_holding_different_allowed_values_disagree() -> None:
    ops = [write("v1", 10), write("v2", None, node="n2", outcome="unknown")]
    verdict = check(ops, everywhere("v1") | {"n2": {"k": "v2"}})
    assert kinds(verdict) == ["disagreement"]


def test_a_value_nobody_wrote_or_only_a_refused_write_sent_is_a_phantom() -> None:
    ops = [write("v1", 10), write("v2", None, at=1, outcome="fail")]
    assert kinds(check(ops, everywhere("v1") | {"n1": {"k": "zz"}})) == ["phantom_final"]
    assert kinds(check(ops, everywhere("v2"))) == ["phantom_final"]
    assert kinds(check(ops, everywhere("v1") | {"n3": {"k": "v1", "other": 1}}), "other") == ["phantom_final"]


def test_a_read_of_a_value_not_yet_sent_or_refused_or_never_sent_is_a_phantom() -> None:
    ops = [write("v1", 10, at=5), write("v2", None, at=1, outcome="fail")]
    ops += [read("v1", at=2), read("v2"), read("x")]
    verdict = check(ops, everywhere("v1"))
    assert kinds(verdict) == ["phantom_read"] * 3
    assert all("a read of 'k' on n1" in v.detail for v in verdict.violations)


# -- what it must accept -------------------------------------------------------------------


def test_an_unanswered_write_or_delete_may_have_won() -> None:
    ops = [write("v1", 10), write("v2", None, at=1, outcome="unknown"), delete(None, at=2, outcome="unknown")]
    for final in ("v1", "v2", None):
        verdict = check(ops, everywhere(final))
        assert verdict.ok and (verdict.acknowledged, verdict.unknown) == (1, 2), final


def test_a_later_acknowledged_delete_beats_a_write() -> None:
    ops = [write("v1", 10), delete(12, node="n2", at=1)]
    verdict = check(ops, everywhere(None))
    assert verdict == Verdict(violations=(), keys=1, acknowledged=2, unknown=0)


def test_a_timestamp_tie_between_writers_lets_either_win() -> None:
    ops = [write("v1", 10, node="n1"), write("v2", 10, node="n2"), delete(10, node="n3")]
    for final in ("v1", "v2", None):
        assert check(ops, everywhere(final)).ok, final


def test_a_key_written_only_by_refused_writes_is_never_present() -> None:
    ops = [write("v1", None, outcome="fail"), delete(None, outcome="fail"), read(None)]
    assert check(ops, everywhere(None)) == Verdict(violations=(), keys=1, acknowledged=0, unknown=0)


def test_a_read_may_return_a_write_still_in_flight() -> None:
    ops = [write("v1", None, at=1.0, outcome="unknown"), read("v1", at=0.8)]
    assert check(ops, everywhere("v1")).ok


# -- resets ---------------------------------------------------------------------------------


def test_a_loss_on_a_node_that_reset_is_excused_with_the_evidence() -> None:
    ops = [write("v1", 10, node="n1"), write("v2", 11, node="n2", at=1)]
    evidence = "reset: our state predates collections of n3 (forgotten life)"
    plain = check(ops, everywhere("v1"))
    reset = check(ops, everywhere("v1"), [Evidence("n2", evidence)])
    assert kinds(plain) == ["wrong_final"] and reset.ok
    assert [v.kind for v in reset.excused] == ["wrong_final"] and evidence in reset.excused[0].detail


def test_a_reset_excuses_only_the_writes_of_the_node_that_reset() -> None:
    ops = [write("v1", 10, node="n1"), write("v2", 11, node="n2", at=1)]
    verdict = check(ops, everywhere(None), [Evidence("n2", "reset")])
    assert kinds(verdict) == ["lost"] and verdict.excused == ()


def test_a_reset_does_not_excuse_a_disagreement() -> None:
    verdict = check([write("v1", 10)], everywhere("v1") | {"n2": {}}, [Evidence("n1", "reset")])
    assert kinds(verdict) == ["disagreement"] and [v.kind for v in verdict.excused] == ["lost"]


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: Op("write", "k", "v", "n1", 0.0, 1.0, "ok"), "needs the answer's ts and writer"),
        (lambda: Op("write", "k", "v", "n1", 0.0, 1.0, "maybe"), "outcome must be one of ok, fail, unknown"),  # type: ignore[arg-type]
        (lambda: Op("read", "k", None, "n1", 2.0, 1.0, "ok"), "ends before it starts"),
        (lambda: Op("write", "k", None, "n1", 0.0, 1.0, "fail"), "a write of null"),
        (lambda: Op("delete", "k", "v", "n1", 0.0, 1.0, "fail"), "a delete carries no value"),
        (lambda: Op("delete", "k", None, "n1", 0.0, 1.0, "ok", [1, 0], "n1"), "ts must be"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_op_is_refused_saying_why(build: Callable[[], Op], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        build()


def test_a_value_written_twice_and_empty_finals_are_refused() -> None:
    with pytest.raises(ValueError, match="a value unique to each write"):
        check([write("v1", 10), write("v1", 11, at=1)], everywhere("v1"))
    with pytest.raises(ValueError, match="finals is empty"):
        check([write("v1", 10)], {})


def test_a_bad_line_in_a_history_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    dump([write("v1", 10)], path)
    path.write_text(path.read_text() + '{"kind": "write"}\n')
    with pytest.raises(ValueError, match=r"history.jsonl:2: .*missing"):
        load(path)


# -- histories from a last-writer-wins model -------------------------------------------------

Finals = dict[str, dict[str, JSON]]
Closing = tuple[tuple[Kind, Outcome], ...]


@dataclass(frozen=True)
class Model:
    ops: list[Op]
    applied: list[tuple[Timestamp, Op]]  # what the nodes took, unknown outcomes with the stamp nobody saw

    def winners(self, without: Op | None = None) -> dict[str, Op]:
        """Each key's winning op by last-writer-wins, ties broken by the writer's name."""
        best: dict[str, tuple[Timestamp, str, Op]] = {}
        for ts, op in self.applied:
            if op is not without and (op.key not in best or (ts, op.node) > best[op.key][:2]):
                best[op.key] = (ts, op.node, op)
        return {key: op for key, (_, _, op) in best.items()}

    def finals(self, without: Op | None = None) -> Finals:
        """Every node's live values, all alike."""
        live = {key: op.value for key, op in self.winners(without).items() if op.kind == "write"}
        return {node: dict(live) for node in NODES}

    def on(self, key: str, *outcomes: Outcome) -> list[Op]:
        """The writes and deletes on `key`, of these outcomes (all if none given)."""
        wanted = outcomes or OUTCOMES
        return [op for op in self.ops if op.key == key and op.kind != "read" and op.outcome in wanted]


@st.composite
def histories(draw: st.DrawFn, closing: Closing = ()) -> Model:
    """Up to 30 writes, deletes and reads on three keys through three nodes, each stamping with
    its own hybrid clock from a wall clock drawn at random (so stamps tie and interleave);
    unknown outcomes are applied or not at random; a read returns nothing or a value sent
    before it ended. Then the `closing` ops on key "a", each above everything before it.
    Hypothesis draws the length and a seed (drawing each choice through it is ten times slower)."""
    size, rng = draw(st.integers(0, 30)), random.Random(draw(st.integers(0, 2**32 - 1)))
    clocks = {node: HybridClock(max_offset_ms=10**9) for node in NODES}
    model = Model([], [])

    def add(kind: Kind, key: str, node: str, start: float, outcome: Outcome, wall: int | None) -> None:
        ts = clocks[node].tick(wall) if wall is not None else None
        shown = (ts.wall, ts.counter) if outcome == "ok" and ts is not None else None
        value = f"{node}-{len(model.ops)}" if kind == "write" else None
        op = Op(kind, key, value, node, start, start + 1, outcome, shown, node if shown else None)
        model.ops.append(op)
        if ts is not None:
            model.applied.append((ts, op))

    for i in range(size):
        kind, key, node = rng.choice(MIX), rng.choice(KEYS), rng.choice(NODES)
        if kind == "read":
            sent = [None, *(op.value for _, op in model.applied if op.key == key and op.kind == "write")]
            end = float(i + rng.randint(0, 4))
            model.ops.append(Op("read", key, rng.choice(sent), node, float(i), end, "ok"))
            continue
        outcome = rng.choice(OUTCOMES)
        applied = outcome == "ok" or (outcome == "unknown" and rng.random() < 0.5)
        add(kind, key, node, float(i), outcome, rng.randint(0, 20) if applied else None)
    for i, (kind, outcome) in enumerate(closing):
        add(kind, "a", rng.choice(NODES), 100.0 + i, outcome, 1000 + i if outcome == "ok" else None)
    return model


def only(verdict: Verdict, key: str) -> list[str]:
    """The kinds reported, with no violation on any other key."""
    assert all(v.key == key for v in verdict.violations), verdict.violations
    return kinds(verdict, key)


def spoil(finals: Finals, node: str, key: str, value: JSON) -> Finals:
    spoilt = {name: dict(values) for name, values in finals.items()}
    if value is None:
        spoilt[node].pop(key, None)
    else:
        spoilt[node][key] = value
    return spoilt


@QUICK
@given(histories())
def test_a_true_history_is_accepted(model: Model) -> None:
    verdict = check(model.ops, model.finals())
    assert verdict.violations == () and verdict.excused == ()
    assert verdict.acknowledged == sum(len(model.on(key, "ok")) for key in KEYS)


@QUICK
@given(histories(closing=(("write", "ok"),)), st.sampled_from(NODES))
def test_dropping_the_winning_write_on_one_node_is_lost(model: Model, node: str) -> None:
    spoilt = spoil(model.finals(), node, "a", None)
    may_be_deleted = any(op.kind == "delete" for op in model.on("a", "unknown"))
    assert only(check(model.ops, spoilt), "a") == (["disagreement"] if may_be_deleted else ["lost"])


@QUICK
@given(histories(closing=(("write", "ok"), ("delete", "ok"))), st.data())
def test_a_value_back_under_the_winning_delete_is_resurrected(model: Model, data: st.DataObject) -> None:
    back = data.draw(st.sampled_from([op.value for op in model.on("a", "ok") if op.kind == "write"]))
    spoilt = spoil(model.finals(), data.draw(st.sampled_from(NODES)), "a", back)
    assert only(check(model.ops, spoilt), "a") == ["resurrected"]


@QUICK
@given(histories(closing=(("write", "ok"), ("write", "ok"))), st.data())
def test_an_older_acknowledged_value_is_a_wrong_final(model: Model, data: st.DataObject) -> None:
    back = data.draw(st.sampled_from([op.value for op in model.on("a", "ok")[:-1] if op.kind == "write"]))
    spoilt = spoil(model.finals(), data.draw(st.sampled_from(NODES)), "a", back)
    assert only(check(model.ops, spoilt), "a") == ["wrong_final"]


@QUICK
@given(histories(closing=(("write", "unknown"), ("write", "ok"))), st.data())
def test_one_node_holding_another_allowed_value_is_a_disagreement(model: Model, data: st.DataObject) -> None:
    other = data.draw(st.sampled_from([op.value for op in model.on("a", "unknown") if op.kind == "write"]))
    spoilt = spoil(model.finals(), data.draw(st.sampled_from(NODES)), "a", other)
    assert only(check(model.ops, spoilt), "a") == ["disagreement"]


@QUICK
@given(st.sampled_from(CLOSING_KINDS).flatmap(lambda kind: histories(closing=((kind, "ok"),))))
def test_a_reset_excuses_the_loss_of_the_op_it_dropped(model: Model) -> None:
    """Every node lacks the winning op of "a", taken by a node that reset: the same violation
    as without the evidence, moved into `excused`; none when the state left is allowed anyway
    (the same as the winner's, or one an unanswered op may have made)."""
    winner = model.on("a")[-1]
    finals = model.finals(without=winner)
    plain = check(model.ops, finals)
    reset = check(model.ops, finals, [Evidence(winner.node, "reset: our state predates collections")])
    assert reset.violations == ()
    assert [(v.kind, v.key) for v in plain.violations] == [(v.kind, "a") for v in reset.excused]
    left, allowed = finals["n1"].get("a"), [model.finals()["n1"].get("a")]
    allowed += [op.value for op in model.on("a", "unknown")]
    assert bool(plain.violations) == (left not in allowed)


json_values = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FEW
@given(histories(closing=(("write", "ok"),)), json_values)
def test_a_history_survives_dump_and_load(model: Model, value: JSON) -> None:
    ops = [*model.ops, replace(model.ops[-1], kind="read", value=value, ts=None, writer=None)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        dump(ops, path)
        assert load(path) == ops


# -- kill evidence and its window (chaos/evidence.py) -------------------------------------------

SETUP = Setup()  # the suite's: interval 0.25 s, max_offset 2 s, request timeout 2 s, snapshots every 1 s
SPREAD = SETUP.spread  # 2.0 + 0.25 x 1.25


def test_a_connected_nodes_kill_reaches_back_one_spread_and_a_kept_data_dir_one_snapshot() -> None:
    assert pytest.approx(2.3125) == SPREAD
    assert window("n1", 10.0, True, [], SETUP) == pytest.approx((10.0 - SPREAD, 10.0))
    assert window("n1", 10.0, False, [], SETUP) == pytest.approx((10.0 - SETUP.unsaved, 10.0))
    assert SETUP.unsaved == 1.5


def test_a_host_cut_off_from_every_other_reaches_back_to_the_cut() -> None:
    isolated = [Fault("isolate", 5.0, 7.0, ((1,), (2, 3)))]
    assert window("n1", 9.0, True, isolated, SETUP) == pytest.approx((5.0 - SPREAD, 9.0))
    assert window("n2", 9.0, True, isolated, SETUP)[0] == pytest.approx(5.0 - SPREAD)  # its host-mate too
    assert window("n3", 9.0, True, isolated, SETUP)[0] == pytest.approx(9.0 - SPREAD)  # h2 still reaches h3
    # With its data kept, the snapshot bounds the window whatever the cut.
    assert window("n1", 9.0, False, isolated, SETUP)[0] == pytest.approx(9.0 - SETUP.unsaved)


def test_a_cut_that_ended_a_spread_before_the_kill_no_longer_counts() -> None:
    isolated = [Fault("isolate", 2.0, 3.0, ((1,), (2, 3)))]
    assert window("n1", 5.0 + SPREAD, True, isolated, SETUP)[0] == pytest.approx(5.0)
    assert window("n1", 4.0 + SPREAD, True, isolated, SETUP)[0] == pytest.approx(2.0 - SPREAD)


def test_a_host_that_still_reaches_one_other_host_is_not_cut_off() -> None:
    halves = Fault("halves", 5.0, 7.0, ((1, 3), (2,)))
    bridge = Fault("bridge", 5.0, 7.0, ((1,), (3,), (2,)))
    for fault in (halves, bridge):
        assert window("n1", 9.0, True, [fault], SETUP)[0] == pytest.approx(9.0 - SPREAD), fault.kind


def test_cuts_from_different_faults_add_up_to_a_host_cut_off() -> None:
    """h3 | h1 by a one-way drop (over TCP: both ways), h3 | h2 by a partition, each alone
    harmless: together they cut h3 off for the time they overlap, 6.0-8.0 s."""
    plan = [Fault("one_way", 4.0, 4.0, ((3,), (1,))), Fault("halves", 6.0, 5.0, ((1, 3), (2,)))]
    assert window("n5", 9.0, True, plan, SETUP)[0] == pytest.approx(6.0 - SPREAD)
    assert window("n5", 9.0, True, plan[:1], SETUP)[0] == pytest.approx(9.0 - SPREAD)


def test_packet_loss_at_either_end_counts_as_a_cut() -> None:
    plan = [Fault("loss", 5.0, 5.0, ((2,),), amount=30)]
    assert window("n3", 9.0, True, plan, SETUP)[0] == pytest.approx(5.0 - SPREAD)  # on h2: cut off
    assert window("n1", 9.0, True, plan, SETUP)[0] == pytest.approx(9.0 - SPREAD)  # h1 reaches h3


def test_a_clock_ahead_beyond_max_offset_keeps_writes_until_the_others_catch_up() -> None:
    """Skewed +6 s (max_offset 2) over 5-10 s: what h3 wrote is refused until 14 s, longer
    than its nodes' restart at 10 s takes (RESTART)."""
    assert 10.0 + RESTART < 14.0
    ahead = [Fault("skew", 5.0, 5.0, ((3,),), amount=6.0)]
    assert window("n5", 14.0, True, ahead, SETUP)[0] == pytest.approx(5.0 - SPREAD)
    assert window("n5", 14.0 + SPREAD - 0.1, True, ahead, SETUP)[0] == pytest.approx(5.0 - SPREAD)
    assert window("n5", 14.0 + SPREAD + 0.1, True, ahead, SETUP)[0] == pytest.approx(14.1)
    assert window("n1", 14.0, True, ahead, SETUP)[0] == pytest.approx(14.0 - SPREAD)  # h1 reaches h2
    # Within max_offset only the restarts count: 5-8 s and 12-15 s here.
    within = [Fault("skew", 5.0, 7.0, ((3,),), amount=1.5)]
    assert window("n5", 20.0, True, within, SETUP)[0] == pytest.approx(20.0 - SPREAD)
    assert window("n5", 16.0, True, within, SETUP)[0] == pytest.approx(12.0 - SPREAD)


def test_a_pause_or_an_earlier_kill_of_the_node_reaches_back_across_it() -> None:
    paused = [Fault("pause", 3.0, 4.0, node="n1")]
    assert window("n1", 8.0, True, paused, SETUP)[0] == pytest.approx(3.0 - SPREAD)
    assert window("n2", 8.0, True, paused, SETUP)[0] == pytest.approx(8.0 - SPREAD)  # not its own pause
    killed = [Fault("kill", 3.0, 2.0, node="n1")]  # down 3-5 s, then restarting for RESTART
    assert window("n1", 5.0 + RESTART + 1.0, True, killed, SETUP)[0] == pytest.approx(3.0 - SPREAD)


def write_by(node: str, value: str, end: float) -> Op:
    return Op("write", f"once-{value}", value, node, end - 0.01, end, "ok", (int(end * 1000), 0), node)


def test_a_wipe_excuses_only_the_losses_inside_its_window_and_says_how_many() -> None:
    """n1 wiped at 10 s: its write of 9.5 s is excused, its write of 3 s should have spread
    long before and is a violation, n2's write is none of n1's business."""
    ops = [write_by("n1", "old", 3.0), write_by("n1", "new", 9.5), write_by("n2", "other", 9.6)]
    finals: dict[str, dict[str, JSON]] = {n: {} for n in NODES}
    evidence = kill_evidence([("n1", 10.0, True)], [], SETUP, ops)
    verdict = check(ops, finals, evidence)
    assert [(v.kind, v.key) for v in verdict.violations] == [("lost", "once-old"), ("lost", "once-other")]
    assert [v.key for v in verdict.excused] == ["once-new"]
    assert verdict.excused_by == {evidence[0].describe(): 1}
    assert "killed -9 at 10.00 s, its data directory wiped" in verdict.excused[0].detail
    assert f"from {10.0 - SPREAD:.2f} s to 10.00 s" in verdict.excused[0].detail
    # The untimed rule (any write of a wiped node) excused both of n1's.
    untimed = check(ops, finals, [Evidence("n1", "killed -9 at 10.00 s, its data directory wiped")])
    assert [v.key for v in untimed.violations] == ["once-other"]


def test_a_kill_that_kept_the_data_is_evidence_only_if_it_fell_on_unsaved_writes() -> None:
    saved, unsaved = write_by("n1", "saved", 8.0), write_by("n1", "unsaved", 9.9)
    assert kill_evidence([("n1", 10.0, False)], [], SETUP, [saved]) == []
    [evidence] = kill_evidence([("n1", 10.0, False)], [], SETUP, [saved, unsaved])
    assert (evidence.since, evidence.until) == pytest.approx((10.0 - SETUP.unsaved, 10.0))
    assert evidence.excuses(unsaved) and not evidence.excuses(saved)


def test_the_report_says_how_many_losses_each_piece_of_evidence_excused() -> None:
    ops = [write_by("n1", "a", 9.5), write_by("n1", "b", 9.6), write_by("n2", "c", 3.0)]
    reset = Evidence("n2", "WARNING:gossip.node:n2: reset: our state predates collections of n4 (...)")
    evidence = [*kill_evidence([("n1", 10.0, True)], [], SETUP, ops), reset]
    verdict = check(ops, {n: {} for n in NODES}, evidence)
    assert verdict.ok and len(verdict.excused) == 3
    row = Result(seed=0, faults=["kill_wipe"], ops=3, acknowledged=3, unknown=0, violations=[],
                 excused=[f"{v.kind} {v.key}: {v.detail}" for v in verdict.excused], evidence={}, heal=0.1,
                 agreement=0.2, excused_by=verdict.excused_by)
    assert excused_cell(row) == (
        f"3 (2 by n1: killed -9 at 10.00 s, its data directory wiped (its writes acknowledged from "
        f"{10.0 - SPREAD:.2f} s to 10.00 s); 1 by n2: reset)"
    )
