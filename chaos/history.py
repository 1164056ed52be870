"""What the clients of a chaos run saw, and the checker that judges it by last-writer-wins.

A run records one `Op` per request. After the faults heal and the nodes agree, `check`
compares each node's live values with what the acknowledged operations allow:

- lost: a node lacks a key whose winning acknowledged operation is a write;
- resurrected: a node holds a value written before the acknowledged delete that wins;
- wrong_final: a node holds a value older than the acknowledged write that wins;
- phantom_final: a node holds a value no write on that key sent, or only a refused one;
- disagreement: the nodes differ on a key though each value alone is allowed;
- phantom_read: a read returned a value no write had sent by the time the read ended.

The winner of a key is its acknowledged operation with the highest timestamp. An exact tie
is ambiguous (the tie-break is the writing life's id, which acknowledgments do not show),
so either side may win. An operation whose outcome is unknown may have been applied with a
timestamp nobody saw, so its value, or its absence for a delete, is always allowed.

Some losses the contract allows (docs/PROTOCOL.md, "What can be lost, and when"): a node
that reset lost the writes only it held, and a node killed -9 those it had not passed on
yet or saved (chaos/evidence.py says which, from the run's settings and faults). A wrong
final value is excused when every acknowledged operation it leaves out is excused by a
piece of evidence: a node that reset, for any operation it took; a kill, for those it took
within the kill's window. The evidence goes with it into `Verdict.excused`, and
`Verdict.excused_by` counts the losses each piece of evidence excused. A disagreement is
never excused.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from chaos.evidence import Evidence
from chaos.ops import Op, Stamp
from gossip.jsontext import canonical, dumps, loads
from gossip.store import JSON

State = bytes | None  # a key's value on a node as canonical JSON; None when absent


@dataclass(frozen=True)
class Violation:
    kind: str  # one of the kinds in the module docstring
    key: str
    detail: str  # one line: which op, which node, what was expected and found


@dataclass(frozen=True)
class Verdict:
    violations: tuple[Violation, ...]
    keys: int
    acknowledged: int  # writes and deletes
    unknown: int  # writes and deletes
    excused: tuple[Violation, ...] = ()  # losses the evidence explains, with that evidence
    excused_by: dict[str, int] = field(default_factory=dict)  # evidence (described) -> losses it excused

    @property
    def ok(self) -> bool:
        return not self.violations


def dump(ops: Iterable[Op], path: Path) -> None:
    """One JSON object per line."""
    names = [f.name for f in fields(Op)]
    with path.open("wb") as out:
        for op in ops:
            out.write(dumps({name: getattr(op, name) for name in names}) + b"\n")


def in_run(run_dir: Path) -> Path:
    """The history file of a run directory: history.jsonl, or history.jsonl.gz."""
    plain = run_dir / "history.jsonl"
    packed = plain.with_name(plain.name + ".gz")
    return packed if packed.exists() and not plain.exists() else plain


def load(path: Path) -> list[Op]:
    """A history file as `dump` writes it, or gzipped (a name ending in .gz)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    ops = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            body = loads(line)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            if isinstance(body.get("ts"), list):
                body["ts"] = tuple(body["ts"])
            ops.append(Op(**body))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return ops


@dataclass
class _Key:
    """What the history says about one key."""

    writes: dict[bytes, Op] = field(default_factory=dict)  # by canonical value, whatever the outcome
    acked: list[tuple[Stamp, Op]] = field(default_factory=list)
    unknown: list[Op] = field(default_factory=list)


def check(
    ops: Sequence[Op], finals: Mapping[str, Mapping[str, JSON]], evidence: Sequence[Evidence] = ()
) -> Verdict:
    """Judge a run: `finals` maps each node to its live values after healing and agreement;
    `evidence` says which nodes may have lost which of the operations they took."""
    if not finals:
        raise ValueError("finals is empty: give the live values of at least one node")
    history = _index(ops)
    violations: list[Violation] = []
    excused: list[Violation] = []
    excused_by: dict[str, int] = defaultdict(int)
    every_key = history.keys() | {key for values in finals.values() for key in values}
    for key in sorted(every_key):
        states = {node: canonical(values[key]) if key in values else None for node, values in finals.items()}
        wrong, allowed = _judge(key, history.get(key, _Key()), states, evidence)
        violations += wrong
        for violation, used in allowed:
            excused.append(violation)
            for e in used:
                excused_by[e.describe()] += 1
    violations += _phantom_reads(ops, history)
    done = [op for op in ops if op.kind != "read"]
    return Verdict(
        violations=tuple(sorted(violations, key=lambda v: (v.key, v.kind))),
        keys=len(every_key),
        acknowledged=sum(op.outcome == "ok" for op in done),
        unknown=sum(op.outcome == "unknown" for op in done),
        excused=tuple(excused),
        excused_by=dict(excused_by),
    )


def _index(ops: Iterable[Op]) -> dict[str, _Key]:
    history: dict[str, _Key] = defaultdict(_Key)
    for op in ops:
        if op.kind == "read":
            continue
        key = history[op.key]
        if op.kind == "write" and key.writes.setdefault(value := canonical(op.value), op) is not op:
            raise ValueError(
                f"two writes sent {_text(value)} to {op.key!r}: {key.writes[value]} and {op}; "
                "the checker needs a value unique to each write"
            )
        if op.outcome == "ok" and op.ts is not None:
            key.acked.append((op.ts, op))
        elif op.outcome == "unknown":
            key.unknown.append(op)
    return history


def _judge(
    key: str, history: _Key, states: Mapping[str, State], evidence: Sequence[Evidence]
) -> tuple[list[Violation], list[tuple[Violation, list[Evidence]]]]:
    """The violations, and the excused losses with the evidence that excused each, that the
    nodes' final states show for one key."""
    top = max((ts for ts, _ in history.acked), default=None)
    winners = [op for ts, op in history.acked if ts == top]
    allowed = {_state(op) for op in (*winners, *history.unknown)}
    if not history.acked:
        allowed.add(None)
    holders: dict[State, list[str]] = defaultdict(list)
    for node, state in sorted(states.items()):
        holders[state].append(node)
    wrong: list[Violation] = []
    excused: list[tuple[Violation, list[Evidence]]] = []
    for state, nodes in holders.items():
        if state in allowed:
            continue
        violation, beaten = _explain(key, history, winners, state, ", ".join(nodes))
        reasons = [[e for e in evidence if e.excuses(op)] for op in beaten]
        if beaten and all(reasons):
            used = list(dict.fromkeys(e for found in reasons for e in found))
            because = "; ".join(" ".join(e.describe().split()) for e in used)
            excused.append(
                (Violation(violation.kind, key, f"{violation.detail}; excused by {because}"), used)
            )
        else:
            wrong.append(violation)
    if not wrong and len(holders) > 1:
        differ = "; ".join(f"{', '.join(nodes)}: {_text(state)}" for state, nodes in holders.items())
        wrong.append(Violation("disagreement", key, f"the nodes differ on {key!r}: {differ}"))
    return wrong, excused


def _explain(
    key: str, history: _Key, winners: list[Op], state: State, nodes: str
) -> tuple[Violation, list[Op]]:
    """Why a final state is wrong, and the acknowledged operations it leaves out."""
    if state is None:
        since = max((ts for ts, op in history.acked if op.kind == "delete"), default=None)
        found = f"{nodes}: {key!r} is absent, but {_show(winners)} wins"
        kind = "lost"
    else:
        source = history.writes.get(state)
        if source is None or source.outcome == "fail":
            by = "no write sent it" if source is None else f"only {_show([source])} sent it"
            return Violation("phantom_final", key, f"{nodes}: {key!r} = {_text(state)}, but {by}"), []
        since = source.ts
        deleted = all(op.kind == "delete" for op in winners)
        kind = "resurrected" if deleted else "wrong_final"
        found = f"{nodes}: {key!r} holds {_show([source])}, but {_show(winners)} wins"
    beaten = [op for ts, op in history.acked if since is None or ts > since]
    return Violation(kind, key, found), beaten


def _phantom_reads(ops: Iterable[Op], history: Mapping[str, _Key]) -> list[Violation]:
    found = []
    for op in ops:
        if op.kind != "read" or op.outcome != "ok" or op.value is None:
            continue
        state = canonical(op.value)
        source = history[op.key].writes.get(state) if op.key in history else None
        if source is None:
            why = "no write sent it"
        elif source.outcome == "fail":
            why = f"only {_show([source])} sent it"
        elif source.start > op.end:
            why = f"it was sent only later, by {_show([source])}"
        else:
            continue
        read = f"a read of {op.key!r} on {op.node} ({op.start:.3f}-{op.end:.3f} s) returned {_text(state)}"
        found.append(Violation("phantom_read", op.key, f"{read}, but {why}"))
    return found


def _state(op: Op) -> State:
    return None if op.kind == "delete" else canonical(op.value)


def _text(state: State) -> str:
    return "absent" if state is None else state.decode()


def _show(ops: Iterable[Op]) -> str:
    """Operations in one line: `the acknowledged write "c1-4" ([wall, counter] by n1 via n1 at 3.250 s)`."""
    shown = []
    for op in ops:
        what = f"{op.kind} {_text(_state(op))}" if op.kind == "write" else op.kind
        stamp = f"{list(op.ts)} by {op.writer} " if op.ts is not None else ""
        verb = {"ok": "acknowledged", "fail": "refused", "unknown": "unanswered"}[op.outcome]
        shown.append(f"the {verb} {what} ({stamp}via {op.node} at {op.start:.3f} s)")
    return " or ".join(shown)
