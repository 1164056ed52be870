"""The fault-injection suite's short run (`python -m chaos --quick`, see docs/RELIABILITY.md):
six real nodes on three network-namespace hosts, one fault of each kind within 20 s (partitions,
a one-way drop, packet loss, a skewed clock, kill -9 with and without the data, a pause, a key
rotation) while a client writes, deletes and reads; then the heal, agreement, and the
checker's verdict on every acknowledged operation. Needs root, `ip`, `nft` and libfaketime;
skipped with the reason otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.faults import KINDS, load
from chaos.history import load as load_history
from chaos.run import QUICK, run_seed, unavailable

SEED = 0


def test_one_fault_of_each_kind_loses_no_acknowledged_write(tmp_path: Path) -> None:
    if (reason := unavailable()) is not None:
        pytest.skip(reason)
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
    assert result.agreement is not None
