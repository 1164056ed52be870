"""The exhaustive small-scope search of the node-lifecycle rules (simulations/explore.py):
at a small bound it finds nothing outside the contract, and it does find a planted bug,
shrinks it and replays it from its JSON. (`make explore` runs larger bounds.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.clock import Timestamp
from gossip.store import Store
from simulations import explore
from simulations.explore_fingerprint import fingerprint
from simulations.explore_model import Bounds, World, explore_config

# Each grain at a bound that takes a few CPU seconds here: about 1,500 states in the
# message grain, 850 in the tick grain, 350 in the round grain, each healed, settled and
# checked.
SMALL = [Bounds(depth=3, grain="message"), Bounds(depth=3, grain="tick"), Bounds(depth=2, grain="round")]


@pytest.mark.parametrize("bounds", SMALL, ids=lambda b: f"{b.grain}-depth-{b.depth}")
def test_a_small_bound_holds_nothing_outside_the_contract(bounds: Bounds) -> None:
    report = explore.search(bounds)
    found = {k: (c.detail, [explore.describe(e) for e in c.events]) for k, c in report.found.items()}
    assert not found, found
    assert report.complete and report.depth == bounds.depth
    assert report.distinct > 100  # the search did branch: crashes, restarts, writes, rounds
    assert sum(report.new_by_depth.values()) == report.distinct


CASES = sorted((Path(__file__).parent / "data" / "explore-cases").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_a_history_once_found_holds_the_contract(path: Path) -> None:
    """Each history a larger bound once found outside the contract replays clean. The
    first: a write restored from a snapshot held the very timestamp of a delete (of
    another writer) that superseded it and was collected; the restored node took itself
    to hold nothing that delete could have removed, learnt the collection and was judged
    current, and kept the write for good (R7c)."""
    assert explore.main(["--replay", str(path)]) == 0


def test_the_search_is_deterministic_and_dedups() -> None:
    bounds = Bounds(depth=2, grain="message")
    first, second = explore.search(bounds), explore.search(bounds)
    figures = [(r.distinct, r.transitions, r.visited, dict(r.new_by_depth)) for r in (first, second)]
    assert figures[0] == figures[1]
    assert first.transitions > first.distinct - 1  # some paths meet in one state


def test_a_fingerprint_tells_states_apart_and_copies_share_it() -> None:
    world = World(explore_config(), Bounds())
    again = World(explore_config(), Bounds())
    assert fingerprint(world) == fingerprint(again)
    world.apply(("write", "n1", "k0"))
    assert fingerprint(world) != fingerprint(again)
    again.apply(("write", "n1", "k0"))
    assert fingerprint(world) == fingerprint(again)


def test_a_planted_bug_is_found_shrunk_and_replayed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Collect tombstones by wall time alone, whether or not every member holds them (the
    hook simulations/checker.py's own planted bug uses): the search must find a history
    outside the contract, shrink it, and replay it from its JSON."""
    original = Store.collect

    def by_time_alone(self: Store, before_wall: int, stable: object) -> int:
        return original(self, before_wall, lambda writer: Timestamp(2**53 - 1, 0))

    monkeypatch.setattr(Store, "collect", by_time_alone)
    bounds = Bounds(depth=3, grain="message")
    config = explore_config()
    report = explore.search(bounds, config, stop=True)
    assert report.found, "the planted bug went unnoticed"
    kind, cex = next(iter(report.found.items()))
    small = explore.shrink(config, bounds, cex)
    assert small.kind == kind and len(small.events) <= len(cex.events)
    saved = tmp_path / "cex.json"
    saved.write_text(small.to_json(config, bounds))
    assert explore.main(["--replay", str(saved)]) == 1
    monkeypatch.setattr(Store, "collect", original)  # the real rule: the same history is fine
    assert explore.main(["--replay", str(saved)]) == 0


def test_the_command_line_prints_the_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = explore.main(["--depth", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "no violation" in out
    assert all(figure in out for figure in ("states explored", "distinct", "transitions", "depth reached 1"))
