"""A schedule of faults drawn from a seed (chaos/run.py plays it).

Every fault has a start and a bounded duration (seconds since the run began). Network
faults (partitions, one-way drops, packet loss) overlap freely, each in an nftables chain of
its own; faults on processes (clock skew, kill -9, pause) never overlap on one node. One
key rotation runs in the middle of every schedule."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

Kind = Literal[
    "halves", "isolate", "bridge", "one_way", "loss", "skew", "kill", "kill_wipe", "pause", "rotate"
]
KINDS: tuple[Kind, ...] = get_args(Kind)
PROCESS: frozenset[Kind] = frozenset({"skew", "kill", "kill_wipe", "pause"})
DURATION: dict[Kind, tuple[float, float]] = {  # the range each kind's duration is drawn from
    "halves": (4, 10), "isolate": (4, 10), "bridge": (4, 10), "one_way": (3, 8), "loss": (4, 10),
    "skew": (5, 10), "kill": (2, 6), "kill_wipe": (2, 6), "pause": (2, 6), "rotate": (3, 3),
}


@dataclass(frozen=True)
class Fault:
    kind: Kind
    start: float
    duration: float
    # Partitions: hosts in sides[0] stop receiving from sides[1] and, except for one_way,
    # the other way round (a bridge host is on neither side). loss and skew: sides[0] is
    # the one host. Processes: the node's name in `node`.
    sides: tuple[tuple[int, ...], ...] = ()
    node: str = ""
    amount: float = 0.0  # loss: percent of packets dropped; skew: seconds ahead (+) or behind (-)

    @property
    def end(self) -> float:
        return self.start + self.duration

    def describe(self) -> str:
        return f"{self.start:5.1f}-{self.end:5.1f} s  {self._what()}"

    def _what(self) -> str:
        sides = [_hosts(side) for side in self.sides]
        if self.kind == "halves":
            return f"partition {sides[0]} | {sides[1]}"
        if self.kind == "isolate":
            return f"host {sides[0]} isolated"
        if self.kind == "bridge":
            return f"partition {sides[0]} | {sides[1]}, bridged by {sides[2]}"
        if self.kind == "one_way":
            return f"host {sides[0]} receives nothing from host {sides[1]}"
        if self.kind == "loss":
            return f"host {sides[0]} loses {self.amount:.0f} % of the packets it receives"
        if self.kind == "skew":
            return f"host {sides[0]} clock {self.amount:+.2f} s (its nodes restarted)"
        if self.kind == "kill":
            return f"kill -9 {self.node}, restarted with its data"
        if self.kind == "kill_wipe":
            return f"kill -9 {self.node}, restarted with its data directory wiped"
        if self.kind == "pause":
            return f"SIGSTOP {self.node}, then SIGCONT"
        return "key rotation on every node: install, make primary, drop the old key"


def _hosts(hosts: Sequence[int]) -> str:
    return "+".join(f"h{h}" for h in hosts)


def draw(seed: int, hosts: int, nodes: Sequence[str], node_host: dict[str, int], length: float,
         count: int, max_offset: float, each_kind_once: bool = False) -> list[Fault]:
    """`count` faults (plus the rotation) within `length` seconds, drawn from `seed` alone;
    with `each_kind_once`, one fault of each kind instead."""
    rng = random.Random(seed)
    faults = [Fault("rotate", round(rng.uniform(0.4, 0.6) * length, 1), DURATION["rotate"][0])]
    busy: dict[str, list[tuple[float, float]]] = {n: [] for n in nodes}  # process faults per node
    kinds = [k for k in KINDS if k != "rotate" and (k != "bridge" or hosts >= 3)]
    if each_kind_once:
        count = len(kinds)
    tries = 0
    while len(faults) < count + 1 and tries < 100 * count:
        tries += 1
        kind = kinds[len(faults) - 1] if each_kind_once else rng.choice(kinds)
        duration = round(rng.uniform(*DURATION[kind]), 1)
        start = round(rng.uniform(1.0, length - duration), 1)
        fault = _targets(rng, kind, start, duration, hosts, nodes, max_offset)
        touched = [n for n in nodes if node_host[n] == fault.sides[0][0]] if kind == "skew" else [fault.node]
        if kind in PROCESS:
            if any(s < fault.end + 1 and start < e + 1 for n in touched for s, e in busy[n]):
                continue  # one process fault at a time on a node (and a second between them)
            for n in touched:
                busy[n].append((start, fault.end))
        faults.append(fault)
    return sorted(faults, key=lambda f: (f.start, f.kind))


def _targets(rng: random.Random, kind: Kind, start: float, duration: float, hosts: int,
             nodes: Sequence[str], max_offset: float) -> Fault:
    every = list(range(1, hosts + 1))
    rng.shuffle(every)
    if kind == "halves":
        cut = rng.randint(1, hosts - 1)
        return Fault(kind, start, duration, (tuple(sorted(every[:cut])), tuple(sorted(every[cut:]))))
    if kind == "isolate":
        return Fault(kind, start, duration, ((every[0],), tuple(sorted(every[1:]))))
    if kind == "bridge":
        rest = every[1:]
        cut = rng.randint(1, len(rest) - 1)
        return Fault(
            kind, start, duration, (tuple(sorted(rest[:cut])), tuple(sorted(rest[cut:])), (every[0],))
        )
    if kind == "one_way":
        return Fault(kind, start, duration, ((every[0],), (every[1],)))
    if kind == "loss":
        return Fault(kind, start, duration, ((every[0],),), amount=rng.choice([10, 20, 30, 50]))
    if kind == "skew":  # within max_offset half the time, beyond it the other half
        size = rng.uniform(0.2, 0.8) if rng.random() < 0.5 else rng.uniform(1.5, 3.0)
        return Fault(
            kind, start, duration, ((every[0],),), amount=round(rng.choice([-1, 1]) * size * max_offset, 2)
        )
    return Fault(kind, start, duration, node=rng.choice(list(nodes)))


def save(faults: Sequence[Fault], path: Path) -> None:
    path.write_text(json.dumps([asdict(f) for f in faults], indent=1) + "\n")


def load(path: Path) -> list[Fault]:
    return [
        Fault(**{**d, "sides": tuple(tuple(s) for s in d["sides"])}) for d in json.loads(path.read_text())
    ]
