"""Routine operations that once lost acknowledged data or left nodes disagreeing for
good (simulations/routine.py), each at the settings it was found at: rounds every
second, tombstone_grace and reap_after of an hour. Each failed on the core before
collection waited for every member. `gossip-sim routine --at-defaults` runs them at
today's defaults."""

from __future__ import annotations

from functools import cache

import pytest

from simulations.routine import FOUND_AT, ROUTINE, many_lives
from simulations.scenarios import Report


@cache
def run(name: str) -> Report:
    return ROUTINE[name](seed=1)


@pytest.mark.parametrize("name", [n for n in ROUTINE if n != "many-lives"])
def test_routine_operation_loses_nothing_and_resets_no_one(name: str) -> None:
    report = run(name)
    assert report.lost_writes == 0
    assert report.converged_after is not None


def test_join_under_ttl_churn_collects_around_the_newcomer() -> None:
    report = run("join-under-ttl-churn")
    assert report.figures["collected"] > 0  # expired entries were collected meanwhile
    assert report.figures["old keys on the new node"] == 40


def test_many_lives_keep_digests_bounded() -> None:
    """Once, gossip stopped after max_members_per_message (1,024) lives, every digest
    refused as listing too many writers; with 64 allowed, 100 lives show the same."""
    report = many_lives(seed=1, config=FOUND_AT.replace(max_members_per_message=64), lives=100)
    assert report.figures["digest writers (largest seen)"] < 16
