"""Node lives that end, restart and come back (simulations/lives.py): seven cases a
fault search found outside docs/PROTOCOL.md's contract, "What can be lost, and when",
each a story in virtual time at a fixed seed. Each test asserts the contract, through
what can be seen from outside the core only: what nodes read, how often each was reset,
whether a node is still catching up, refused messages, agreement. A story raises
ScenarioFailed, naming what went wrong, when the contract is broken.
"""

from __future__ import annotations

from simulations.lives_forgotten import away_twice_reap, majority_node_reset_after_heal, reset_pair_cold_start
from simulations.lives_retired import (
    endless_catch_up,
    restored_pair,
    retired_on_one_word,
    wedged_past_writer_cap,
)


def test_no_node_of_the_majority_is_reset_after_a_heal() -> None:
    """R18, R7c, contract items 3 and 7: n0, cut off for longer than reap_after, is
    forgotten and reset on the heal; no other node, never cut off, forgotten nor
    restored, is reset, and no acknowledged write is lost."""
    report = majority_node_reset_after_heal(seed=1)
    assert report.lost_writes == 0
    assert report.converged_after is not None


def test_a_newcomer_completes_its_catch_up_after_a_rolling_restart() -> None:
    """R7d, R9, R20: a node joining once ended lives have been retired catches up within
    a bound (30 s, 150 rounds), even when their entries do not fit in one message, and
    then agrees with the others."""
    report = endless_catch_up(seed=1)
    assert report.figures["newcomer caught up after s"] < 30


def test_a_node_away_for_less_than_reap_after_loses_nothing() -> None:
    """R20, R7a, R7c, contract item 2: a writer is not retired, nor its deletes
    collected, on the word of the members one restarted node knows; n9, away 50 s
    against a reap_after of 120 s, is not reset and keeps the write it took meanwhile."""
    report = retired_on_one_word(seed=13)
    assert report.lost_writes == 0
    assert report.figures["resets"] == 0


def test_two_nodes_restored_together_do_not_keep_a_collected_delete() -> None:
    """R19, R20, R7c, contract items 3 and 7: two nodes restored from data older than a
    retired writer's collected delete, which first resync from each other, do not keep
    the deleted value: nobody reads it, and the cluster agrees again."""
    report = restored_pair(seed=1)
    assert report.lost_writes == 0
    assert report.converged_after is not None


def test_recycled_lives_do_not_wedge_gossip_while_a_member_is_away() -> None:
    """R20, R13 (max_members_per_message), R19: a worker recycled past the writer cap
    while a member is paused: no message is refused at decode, and once the member is
    back, every node agrees and holds every acknowledged write."""
    report = wedged_past_writer_cap(seed=1)
    assert report.figures["messages refused"] == 0
    assert report.converged_after is not None


def test_a_node_away_for_over_twice_reap_after_brings_no_delete_back() -> None:
    """R18, R20, R7c, contract items 3 and 7: a node cut off for longer than twice
    reap_after, once everything that could judge it is forgotten, is still reset (or
    otherwise kept from spreading what it holds): no deleted key comes back on any node."""
    report = away_twice_reap(seed=1)
    assert report.lost_writes == 0
    assert report.converged_after is not None


def test_a_reset_node_does_not_catch_up_from_another_reset_node() -> None:
    """R7d (the cold start exception), R7c, contract items 3 and 7: two nodes forgotten
    together and reset at the same moment do not complete their catch-up from each other
    with nothing; each is reset once, and a write taken once it has caught up is kept."""
    report = reset_pair_cold_start(seed=1)
    assert report.lost_writes == 0
    assert report.converged_after is not None
