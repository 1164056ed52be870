"""A live node (a real process, real HTTP) under a flood of adversarial requests
accepts none, never answers 5xx, keeps its state, keeps serving and counts every refusal.
`python -m scripts.flood` runs the same with 10,000 requests and prints the table."""

from __future__ import annotations

import pytest

from scripts.flood import FloodResult, kinds, run_flood


@pytest.fixture(scope="module")
def flood() -> FloodResult:
    return run_flood(requests=1_500, nodes=2, concurrency=8, seed=11, timeout=120.0, baseline_reads=200)


def test_every_kind_was_sent(flood: FloodResult) -> None:
    assert sum(r.sent for r in flood.by_kind.values()) == 1_500
    assert {k.name for k in kinds("t")} == set(flood.by_kind)
    assert all(r.sent > 0 for r in flood.by_kind.values()), flood.table()


def test_nothing_accepted_and_no_server_error(flood: FloodResult) -> None:
    assert flood.accepted == 0, flood.table()
    assert flood.server_errors == 0, flood.table()
    assert flood.transport_errors == 0, flood.table()


def test_each_kind_gets_its_own_refusal(flood: FloodResult) -> None:
    # e.g. a replay is refused as a replay (403), not as malformed: the check that should
    # catch it is the one that did
    assert flood.unexpected == {}, flood.table()


def test_state_unchanged_and_node_serving(flood: FloodResult) -> None:
    assert flood.digest_after == flood.digest_before, flood.table()
    assert flood.peer_digest_after == flood.digest_before
    assert flood.serving_after
    assert flood.legit_exchange_after == 200  # the key still verifies, nonces still fresh
    assert flood.propagated_after  # and the nodes still gossip with each other
    assert flood.probe_failures == (0, 0), flood.table()


def test_stats_count_every_refused_gossip_request(flood: FloodResult) -> None:
    assert flood.refused_gossip > 1_000
    assert flood.rejected_delta == flood.refused_gossip, flood.table()
    assert set(flood.rejected_by_reason) == {
        "AuthError", "ReplayError", "IncompatibleMessage", "MalformedMessage", "ClockSkewRejected",
    }
