"""The sizes experiment (gossip-sim sizes), small: sampled views keep a message's bytes
flat in N, the detector tuned to them marks no live member dead and still finds a
crash, and digests list live writers only while node after node restarts (R13, R17, R20)."""

from __future__ import annotations

from gossip.config import Config
from simulations.sizes import heartbeats, probe, restart_history, variants


def test_sampled_views_keep_messages_flat_in_n() -> None:
    chosen = variants()
    small = probe(100, "after", chosen["after"], rounds=10)
    large = probe(3000, "after", chosen["after"], rounds=10)
    whole = probe(3000, "before", chosen["before"], rounds=10)
    assert large.max_bytes <= 4096
    assert large.max_bytes - small.max_bytes < 200  # a few longer ids, nothing per member
    assert whole.mean_bytes > 10 * large.mean_bytes


def test_sampled_views_mark_no_live_member_dead_and_find_a_crash() -> None:
    config = Config(view_size=6)  # 6 of 60 members per message: sampled hard
    run = heartbeats(60, "after", config, rounds=100, crash_timeout=200)
    assert run.false_dead == 0
    assert run.undetected == 0
    expected = 2 * 59 / (2 * 3 * 5)  # rounds between heartbeats the detector expects
    assert max(run.detection) < 40 * expected


def test_digests_list_live_writers_only_over_many_restarts() -> None:
    """Each restart starts a writer (R16); the ended ones retire (R20), so digests list the
    live writers only."""
    points = restart_history(nodes=6, restarts=60, every=3.0)
    assert points[-1].writers_ever == 60
    # The current life of each restarting node, and the life that ended 2.5 s before
    # (a writer is retired once it has stood still for SETTLE_ROUNDS rounds).
    assert all(p.digest <= 6 for p in points)
    assert all(p.retired_kept < p.writers_ever for p in points)
