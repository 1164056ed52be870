"""The randomized fault checker (simulations/checker.py): a short search in `make test`
(`make check-long` runs thousands of seeds), and proof that it finds, shrinks and
replays a planted bug."""

from __future__ import annotations

import pytest

from gossip.clock import Timestamp
from gossip.store import Store
from simulations import checker

SHORT = range(0, 24)


@pytest.mark.parametrize("seed", SHORT)
def test_a_short_search_finds_nothing_outside_the_contract(seed: int) -> None:
    outcome = checker.check(seed)
    assert outcome.ok, [f"{v.kind}: {v.detail}" for v in outcome.violations]
    assert outcome.figures["agreed after s"] >= 0


def test_the_search_covers_the_faults_it_claims() -> None:
    kinds = {step.kind for seed in SHORT for step in checker.generate(seed).steps}
    assert kinds >= {"write", "delete", "cut", "block", "loss", "crash", "pause", "leave", "restart", "skew"}
    modes = {s.args["mode"] for seed in SHORT for s in checker.generate(seed).steps if s.kind == "restart"}
    assert modes >= {"keep", "stale", "empty", "pause"}


def test_a_schedule_replays_exactly_from_its_json() -> None:
    schedule = checker.generate(5)
    again = checker.Schedule.from_json(schedule.to_json())
    assert again == schedule
    first, second = checker.run(schedule, trace=True), checker.run(again, trace=True)
    assert first.trace == second.trace and first.figures == second.figures


def test_a_planted_bug_is_found_shrunk_and_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Collect by wall time alone, as the core once did: the search must find a deleted
    key brought back or a lost write, and shrink the schedule to a few steps."""
    original = Store.collect

    def by_time_alone(self: Store, before_wall: int, stable: object) -> int:
        return original(self, before_wall, lambda writer: Timestamp(2**53 - 1, 0))

    monkeypatch.setattr(Store, "collect", by_time_alone)
    found = next((o for o in map(checker.check, range(60)) if not o.ok), None)
    assert found is not None, "the planted bug went unnoticed"
    small = checker.shrink(found, budget=120)
    assert not small.ok
    assert small.violations[0].kind == found.violations[0].kind
    assert len(small.schedule.steps) < len(found.schedule.steps)
    replayed = checker.run(checker.Schedule.from_json(small.schedule.to_json()))
    assert [v.kind for v in replayed.violations] == [v.kind for v in small.violations]
