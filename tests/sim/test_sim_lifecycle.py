"""Node lifecycle in virtual time: crash, restart, pause, leave and long absence, with the
core's phi-accrual detector, reaping and tombstone collection.

"""

from __future__ import annotations

import pytest

from gossip.membership import DEAD, LEFT
from simulations.cli import main
from simulations.lifecycle import (
    crash_detect,
    forgotten,
    forgotten_new_writer,
    leave,
    leave_seed,
    long_absence,
    pause,
    restart_empty,
    restart_state,
    short_absence,
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crash_is_detected_by_every_node(seed: int) -> None:
    """R17: a crashed node is marked dead by every other node."""
    report = crash_detect(seed=seed)
    # phi_dead 8 at interval 0.2 s: about 18 mean heartbeat intervals of silence.
    assert 2.5 < report.figures["detection min s"] <= report.figures["detection max s"] < 5
    assert report.figures["false dead (events)"] == 0
    assert report.figures["false suspect (pairs)"] == 0


@pytest.mark.parametrize("scenario", [restart_empty, restart_state])
def test_restarted_node_is_alive_everywhere_with_the_same_state(scenario) -> None:  # type: ignore[no-untyped-def]
    report = scenario(seed=4)
    assert report.lost_writes == 0
    assert report.figures["alive everywhere after s"] < 2
    assert report.figures["same state hash after s"] < 2
    assert report.figures["resets"] == 0


def test_restart_with_state_serves_it_before_talking_to_anyone() -> None:
    """R19: a node restored from its snapshot serves its keys before it hears from anyone."""
    report = restart_state(seed=5)
    assert report.figures["keys served at restart"] == report.figures["keys held before crash"] == 20


def test_paused_node_is_never_marked_dead() -> None:
    """R17: a short pause is never taken for a death."""
    report = pause(seed=6)
    assert report.figures["false dead (events)"] == 0


def test_left_node_is_left_everywhere_and_never_a_target_again() -> None:
    """R18: a node that leaves shows as left, never dead, and nobody gossips with it again."""
    report = leave(seed=7)
    assert report.figures["marked dead by"] == 0
    assert report.figures["messages to it after stop"] == 0
    assert report.figures["left everywhere after s"] < 1
    assert report.figures["still listed by"] == 0  # reaped after reap_after


def test_left_seed_is_never_a_target_again() -> None:
    """A seed that said goodbye stops being a seed once it is reaped (R18)."""
    leave_seed(seed=7)


def test_leave_shows_left_not_dead_at_once() -> None:
    from simulations.lifecycle import _form, life_config, life_network
    from simulations.scenarios import Story

    s = Story("leave-now", 8, life_config(), life_network())
    _form(s, 6, 2.0)
    s.sim.leave("n5")
    s.wait(0.1)
    s.crash("n5")
    s.wait(10)  # past the ~3.7 s a crash takes to be detected
    assert all(s.sim.status(o, "n5") == LEFT for o in s.ids[:-1])
    assert not any(s.sim.status(o, "n5") == DEAD for o in s.ids[:-1])


@pytest.mark.parametrize("seed", [9, 10])
def test_long_absence_holds_collection_back_and_needs_no_reset(seed: int) -> None:
    report = long_absence(seed=seed)
    assert report.figures["deleted keys back (node, key)"] == 0
    assert report.figures["collected while away (others)"] == 0
    assert report.figures["resets of the absent node"] == report.figures["resets of the others"] == 0
    assert report.converged_after is not None


def test_short_absence_gets_the_tombstones_by_gossip() -> None:
    report = short_absence(seed=9)
    assert report.figures["deleted keys back (node, key)"] == 0
    assert report.figures["collected while away (others)"] == 0
    assert report.figures["resets of the absent node"] == 0
    assert report.converged_after is not None


@pytest.mark.parametrize(("scenario", "seed"), [(forgotten, 6), (forgotten_new_writer, 7)])
def test_a_forgotten_node_is_reset_on_return_and_brings_no_deleted_key_back(scenario, seed: int) -> None:  # type: ignore[no-untyped-def]
    report = scenario(seed=seed)
    assert report.figures["deleted keys back (node, key)"] == 0
    assert report.figures["collected while away (others)"] > 0
    assert 1 <= report.figures["resets of the absent node"] <= 2
    assert report.figures["resets of the others"] == 0


def test_lifecycle_scenarios_replay_from_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["scenario", "crash-detect", "--seed", "3", "--repeat", "2"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "detection median s" in outputs[0]
