"""`python -m chaos --rejudge RUN_DIR...`: judge a finished run again from its directory
(history, final values, schedule, events, logs), once with the kill evidence as it used to
be, excusing every loss of a wiped node or of one killed right after writes whatever the
write's age, and once with the windows of chaos/evidence.py. Says which losses the windows
no longer excuse."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from chaos import faults
from chaos.evidence import Evidence, kill_evidence
from chaos.history import Verdict, check, in_run, load
from chaos.ops import Op
from chaos.setup import Setup

RESET_LINE = "reset: our state predates"  # (chaos.run's; not imported, so that no HTTP client loads)
OLD_SNAPSHOT_WINDOW = 1.5  # the untimed rule's: a kill within 1.5 s of a write excused all the node's losses
KILL = re.compile(r"\s*([\d.]+) s\s+begin .*kill -9 (n\d+)(, restarted with its data directory wiped)?")


@dataclass(frozen=True)
class Rejudged:
    run_dir: Path
    before: Verdict  # the untimed evidence
    after: Verdict  # the windows

    def no_longer_excused(self) -> list[str]:
        excused = {v.key for v in self.after.excused}
        return [v.detail for v in self.before.excused if v.key not in excused]

    def lines(self) -> list[str]:
        b, a = self.before, self.after
        found = [
            f"{self.run_dir}: {b.acknowledged} acknowledged writes and deletes",
            f"  untimed evidence: {len(b.violations)} violations, {len(b.excused)} losses excused",
            f"  windows:          {len(a.violations)} violations, {len(a.excused)} losses excused",
        ]
        found += [f"    {n} by {text}" for text, n in sorted(a.excused_by.items())]
        gone = self.no_longer_excused()
        found.append(f"  no longer excused: {len(gone)}")
        found += [f"    {detail}" for detail in gone]
        return found


def kills(run_dir: Path) -> list[tuple[str, float, bool]]:
    """(node, run time, wiped) of each kill -9, from events.txt (else from the schedule)."""
    events = run_dir / "events.txt"
    if events.exists():
        return [(m.group(2), float(m.group(1)), m.group(3) is not None)
                for line in events.read_text().splitlines() if (m := KILL.match(line))]
    plan = faults.load(run_dir / "schedule.json")
    return [(f.node, f.start, f.kind == "kill_wipe") for f in plan if f.kind in ("kill", "kill_wipe")]


def resets(run_dir: Path) -> list[Evidence]:
    found = []
    for log in sorted((run_dir / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        found += [Evidence(log.stem, line.strip()) for line in lines if RESET_LINE in line]
    return found


def untimed(killed: list[tuple[str, float, bool]], ops: list[Op]) -> list[Evidence]:
    """The evidence as the suite gave it before windows: a wipe, or a kill -9 within 1.5 s
    after an acknowledged write, excused every loss of that node."""
    found = []
    for node, at, wiped in killed:
        recent = [op for op in ops if op.node == node and op.kind != "read" and op.outcome == "ok"
                  and at - OLD_SNAPSHOT_WINDOW <= op.end <= at]
        if wiped:
            found.append(
                Evidence(node, f"killed -9 at {at:.1f} s and restarted with its data directory wiped")
            )
        elif recent:
            found.append(
                Evidence(node, f"killed -9 at {at:.1f} s, {len(recent)} writes acknowledged just before")
            )
    return found


def rejudge(run_dir: Path) -> Rejudged:
    ops = load(in_run(run_dir))
    finals = json.loads((run_dir / "verdict.json").read_text())["finals"]
    plan = faults.load(run_dir / "schedule.json")
    killed = kills(run_dir)
    reset = resets(run_dir)
    before = check(ops, finals, reset + untimed(killed, ops))
    after = check(ops, finals, reset + kill_evidence(killed, plan, Setup.load(run_dir), ops))
    return Rejudged(run_dir, before, after)
