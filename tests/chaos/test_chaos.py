"""The fault-injection suite against real nodes (`python -m chaos`, see docs/RELIABILITY.md):
six nodes on three network-namespace hosts, a client writing, deleting and reading while
faults play, then the heal, agreement, and the checker's verdict on every acknowledged
operation. Needs root, `ip`, `nft` and libfaketime; skipped with the reason otherwise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chaos.faults import KINDS, Fault, load
from chaos.history import load as load_history
from chaos.run import QUICK, run_seed, unavailable

SEED = 0


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    if (reason := unavailable()) is not None:
        pytest.skip(reason)


def test_one_fault_of_each_kind_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """`python -m chaos --quick`: partitions, a one-way drop, packet loss, a skewed clock,
    kill -9 with and without the data, a pause and a key rotation within 20 s."""
    result = run_seed(SEED, QUICK, tmp_path)
    run_dir = tmp_path / f"seed-{SEED}"
    assert result.ok, "\n".join(result.problems())

    played = (run_dir / "events.txt").read_text()
    schedule = load(run_dir / "schedule.json")
    assert sorted(f.kind for f in schedule) == sorted(KINDS)
    for fault in schedule:
        if fault.kind != "rotate":
            assert f"begin {fault.describe()}" in played, played
    assert "rotation: old key dropped" in played and "agreement after" in played

    ops = load_history(run_dir / "history.jsonl")
    assert len(ops) == result.ops
    writes = [op for op in ops if op.kind == "write"]
    assert sum(op.outcome == "ok" for op in writes) > 50  # the cluster took writes throughout
    assert any(op.outcome == "fail" for op in ops)  # the faults did refuse some requests


def test_writes_lost_with_an_isolated_hosts_data_are_found_and_excused(tmp_path: Path) -> None:
    """Both nodes of an isolated host lose their data: the writes only they held are gone,
    the checker finds each one, and the wipe (and nothing else) excuses it."""
    plan = [Fault("isolate", 1.0, 8.0, ((1,), (2, 3))),
            Fault("kill_wipe", 5.0, 1.5, node="n1"), Fault("kill_wipe", 5.0, 1.5, node="n2")]
    result = run_seed(SEED, dataclasses.replace(QUICK, length=10.0), tmp_path, plan)
    assert result.ok, "\n".join(result.problems())
    assert result.excused, "no acknowledged write was lost: the isolated host's writes reached the others"
    assert all(line.startswith("lost ") and "data directory wiped" in line for line in result.excused)
    assert set(result.evidence) == {"n1", "n2"}
