"""The fault schedules of the randomized checker (simulations/checker.py): a schedule
is a cluster, a network and timed steps; `generate` draws one from a seed.

From a seed it draws a cluster (2 to 6 nodes, or 7 to 10 in a quarter of the seeds;
member views of 2 to 4 records in about a third, so that each message carries a small
sample of the membership; short grace and reap periods so that long absences fit in a
quick run), a stream of writes, TTL writes, windowed-counter slots (which are collected
without the grace) and deletes on a few keys, and a schedule of faults:

- partitions, one-way cuts, message loss, duplication and reordering (the latency tail);
- crashes with restarts from the latest data-dir snapshot, from an old one or empty,
  pauses, graceful leaves, and clocks set off within and beyond `max_offset`;
- lives born under a skewed clock: a node killed and started again (from its data or
  empty) with its clock off, within or beyond `max_offset`, then again once it is right;
- a host's clock off: two or more nodes with the same offset, which agree with each other
  while the rest refuse them, sometimes rebooted under it and again once it is right;
- several nodes killed together and restored together from snapshots older than their
  latest, possibly older than collections and retirements the cluster made meanwhile;
- workers recycled over and over (each restart a new life, some under a new node id, the
  old id leaving or killed for good) while another member is down, paused or cut off;

each absence shorter than the grace period, past it, past `reap_after` (the node is
forgotten) or past twice that (the run is lengthened to hold it). The steps end by
`heal_at`; the cluster must agree within `agree_within` after it. In half the seeds the
nodes also probe each other directly (R23), at the gossip interval. A schedule prints as
JSON and reads back (`gossip-sim check --replay FILE`), and `without` drops steps (each
step stands alone, so a start without its end still runs: shrinking relies on it).
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from typing import Any

KEYS = ("k0", "k1", "k2", "k3", "k4")


@dataclass(frozen=True)
class Step:
    at: float  # virtual seconds
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    seed: int
    nodes: int
    config: dict[str, Any]  # Config fields
    network: dict[str, Any]  # NetworkModel fields
    steps: tuple[Step, ...]
    heal_at: float  # every fault ends here; then the cluster must agree
    agree_within: float  # virtual seconds after heal_at

    def to_json(self) -> str:
        body = dataclasses.asdict(self)
        return json.dumps(body, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        body = json.loads(text)
        steps = tuple(Step(s["at"], s["kind"], s["args"]) for s in body.pop("steps"))
        return cls(steps=steps, **body)

    def without(self, drop: set[int]) -> Schedule:
        return dataclasses.replace(self, steps=tuple(s for i, s in enumerate(self.steps) if i not in drop))


# -- drawing a schedule ------------------------------------------------------------------

FAULTS = ("partition", "oneway", "loss", "crash", "pause", "leave", "skew")  # of the network or one process
# Faults of whole lives and hosts: a life born under a skewed clock, a host's clock off,
# several nodes restored together from stale snapshots, workers recycled while a member
# is away.
LIFE_FAULTS = ("skewed-life", "host-skew", "stale-group", "recycle")
SKEWS = (-8000, -3000, 3000, 8000)  # ms; max_offset is 5 s
LIFE_SKEWS = (-20000, -8000, -3000, -1000, 1000, 3000, 8000, 20000)  # within and beyond max_offset
MAX_DURATION = 150.0  # virtual seconds of faults, at most (a long absence lengthens a run)
MAX_RECYCLES = 40  # worker restarts in one recycling fault


def detection(nodes: int, fanout: int, view_size: int, interval: float) -> float:
    """About how long a crash takes to be seen (R17): 18 times the interval at which a
    member's heartbeat is expected, one round with whole views, more with small ones
    (20 of them, for a margin), and never more than 30 s, so that runs stay short."""
    rounds = 1.0 if nodes <= view_size else max(1.0, (nodes - 1) / (fanout * (view_size - 1)))
    return min(30.0, 20 * interval * rounds)


def generate(seed: int) -> Schedule:
    rng = random.Random(f"check:{seed}")
    nodes = rng.randint(2, 6) if rng.random() < 0.75 else rng.randint(7, 10)
    interval = 0.25
    grace = rng.choice([2.0, 4.0, 8.0])
    reap = rng.choice([4.0, 8.0, 15.0])
    fanout = rng.choice([1, 2, 3])
    # Small member views: each message carries a sample of 2-4 records (R13).
    view_size = rng.choice([2, 3, 4]) if rng.random() < 0.35 else 48
    config = {
        "gossip_interval": interval, "fanout": fanout, "tombstone_grace": grace,
        "reap_after": reap, "eager_push": rng.random() < 0.7, "request_timeout": 0.5,
        "max_offset": 5.0, "view_size": view_size,
    }
    network = {
        "latency": rng.choice([0.001, 0.003]), "latency_tail": rng.choice([0.0, 0.002, 0.02]),
        "loss": rng.choice([0.0, 0.0, 0.02, 0.1]), "duplicate": rng.choice([0.0, 0.0, 0.05]),
    }
    duration = rng.uniform(20, 60)
    ids = [f"n{i}" for i in range(nodes)]
    detect = detection(nodes, fanout, view_size, interval)
    steps: list[Step] = []
    serial = dict.fromkeys(ids, 0)  # new ids drawn per worker slot
    longest = 0.0  # the end of the longest absence: the run lasts past it

    # An absence is short (below grace), past grace, past reap_after plus the time a
    # crash takes to be seen (then the node is forgotten), or past twice that.
    def absence(start: float) -> float:
        nonlocal longest
        kind = rng.choice(["short", "short", "grace", "grace", "forgotten", "forgotten", "twice"])
        if kind == "short":
            return rng.uniform(0.2, grace)
        if kind == "grace":
            return rng.uniform(grace, grace + reap)
        if kind == "forgotten":
            return rng.uniform(reap + detect + 2, reap + detect + 20)
        length = rng.uniform(2 * reap + detect + 2, 2 * reap + detect + 15)
        longest = max(longest, start + length)
        return length

    def away(node: str, start: float, end: float, name: str, modes: tuple[str, ...]) -> None:
        """`node` is down or cut off from `start` to `end`, in one of `modes`."""
        how = rng.choice(modes)
        if how == "crash":
            mode = rng.choice(["keep", "keep", "stale", "empty"])
            steps.extend([Step(start, "crash", {"node": node}),
                          Step(end, "restart", {"node": node, "mode": mode})])
        elif how == "pause":
            steps.extend([Step(start, "pause", {"node": node}),
                          Step(end, "restart", {"node": node, "mode": "pause"})])
        else:
            steps.extend([Step(start, "cut", {"name": name, "group": [node]}),
                          Step(end, "heal", {"name": name})])

    def lives(at: float, group: list[str], offset_ms: int, modes: tuple[str, ...]) -> float:
        """Each node of `group` is killed at `at` and starts again a moment later (when
        it returns), its clock `offset_ms` off, from its data or empty."""
        back = at + rng.uniform(0.05, 2.0)
        for node in group:
            mode = rng.choice(modes)
            again = {"node": node, "mode": mode, "offset_ms": offset_ms}
            steps.extend([Step(at, "crash", {"node": node}), Step(back, "restart", again)])
        return back

    for n in range(rng.randint(1, 5)):
        start = rng.uniform(1.5, duration)
        name = f"f{n}"
        kind = rng.choice(FAULTS + LIFE_FAULTS)
        length = absence(start)
        end = start + length
        node = rng.choice(ids)
        if kind == "partition" and nodes > 1:
            group = rng.sample(ids, rng.randint(1, nodes - 1))
            steps += [Step(start, "cut", {"name": name, "group": group}), Step(end, "heal", {"name": name})]
        elif kind == "oneway" and nodes > 1:
            src = rng.sample(ids, rng.randint(1, nodes - 1))
            dst = [i for i in ids if i not in src]
            steps += [Step(start, "block", {"name": name, "src": src, "dst": dst}),
                      Step(end, "heal", {"name": name})]
        elif kind == "loss":
            p = rng.choice([0.2, 0.5, 0.9])
            steps += [Step(start, "loss", {"p": p}), Step(end, "loss", {"p": network["loss"]})]
        elif kind in ("crash", "leave"):
            mode = rng.choice(["keep", "keep", "stale", "empty"])
            steps += [Step(start, kind, {"node": node}), Step(end, "restart", {"node": node, "mode": mode})]
        elif kind == "pause":
            steps += [Step(start, "pause", {"node": node}),
                      Step(end, "restart", {"node": node, "mode": "pause"})]
        elif kind == "skew":
            offset = rng.choice(SKEWS)
            steps += [Step(start, "skew", {"node": node, "offset_ms": offset}),
                      Step(end, "skew", {"node": node, "offset_ms": 0})]
        elif kind == "skewed-life":  # born under a bad clock, then restarted once it is right
            end = lives(start, [node], rng.choice(LIFE_SKEWS), ("keep", "keep", "stale", "empty")) + length
            if rng.random() < 0.3:  # the clock is put right under the running life first
                steps.append(Step(end, "skew", {"node": node, "offset_ms": 0}))
                end += rng.uniform(0.2, 5.0)
            lives(end, [node], 0, ("keep", "empty"))
        elif kind == "host-skew":  # nodes on one host share its clock: they agree, the rest refuse them
            host = sorted(rng.sample(ids, rng.randint(2, max(2, nodes - 1))))
            offset = rng.choice(LIFE_SKEWS)
            steps.append(Step(start, "skew", {"nodes": host, "offset_ms": offset}))
            if rng.random() < 0.5:  # the host reboots with its clock off
                end = max(end, lives(rng.uniform(start, end), host, offset, ("keep", "keep", "empty")) + 0.1)
            steps.append(Step(end, "skew", {"nodes": host, "offset_ms": 0}))
            if rng.random() < 0.5:  # and again once it is right
                lives(end + rng.uniform(0.1, 3.0), host, 0, ("keep", "keep", "empty"))
        elif kind == "stale-group":  # killed together, restored together from old snapshots
            group = sorted(rng.sample(ids, rng.randint(2, min(nodes, 4))))
            age = rng.choice([rng.uniform(0.5, grace), rng.uniform(grace, grace + reap),
                              rng.uniform(reap, 2 * reap + detect)])
            for member in group:
                steps.append(Step(start + rng.uniform(0.0, 1.0), "crash", {"node": member}))
                back = {"node": member, "mode": "stale", "age": round(age, 3)}
                steps.append(Step(end + 1.0, "restart", back))
        elif kind == "recycle":  # workers restarted over and over while a member is away
            away(node, start, end, name, ("crash", "pause", "cut"))
            others = [i for i in ids if i != node]
            slots = rng.sample(others, min(len(others), rng.choice([1, 1, 2])))
            gap = rng.choice([0.3, 1.0, 3.0])
            t = start + rng.uniform(0.1, 1.0)
            for _ in range(MAX_RECYCLES):
                if t >= end:
                    break
                slot = rng.choice(slots)
                args: dict[str, Any] = {"node": slot, "how": rng.choice(["crash", "leave"])}
                if rng.random() < 0.5:  # a new port: a new node id
                    serial[slot] += 1
                    args["new_id"] = f"{slot}.{serial[slot]}"
                else:  # the same port and data directory
                    args["mode"] = rng.choice(["keep", "keep", "empty"])
                steps.append(Step(t, "recycle", args))
                t += 0.05 + rng.expovariate(1 / gap)
    duration = min(MAX_DURATION, max(duration, longest + rng.uniform(1.0, 5.0)))
    value = 0
    t = 1.5  # the cluster forms first
    while t < duration:
        t += rng.expovariate(rng.choice([1.0, 3.0]))
        node, key = rng.choice(ids), rng.choice(KEYS)
        roll = rng.random()
        value += 1
        if roll < 0.5:
            steps.append(Step(t, "write", {"node": node, "key": key, "value": value}))
        elif roll < 0.6:  # a windowed counter's slot (R22), collected without the grace (R7e)
            steps.append(Step(t, "window", {"node": node, "key": key, "value": value}))
        elif roll < 0.75:
            ttl = rng.choice([0.5, 2.0, 10.0])
            steps.append(Step(t, "write", {"node": node, "key": key, "value": value, "ttl": ttl}))
        else:
            steps.append(Step(t, "delete", {"node": node, "key": key}))
    steps = [dataclasses.replace(s, at=round(s.at, 3)) for s in steps if s.at < duration]
    steps.sort(key=lambda s: s.at)
    agree_within = reap + detect + 60
    if rng.random() < 0.5:  # half the schedules also probe members directly (R23)
        config.update(probe_interval=interval, probe_timeout=0.4 * interval)
    return Schedule(seed, nodes, config, network, tuple(steps), round(duration, 3), agree_within)
