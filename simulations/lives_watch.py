"""What the stories of node lives (simulations/lives.py) share: the settings they run
at (short rounds, grace and reap periods), a cluster formed, routine traffic that
keeps collection moving, watchers that note every reset, every deleted key read back
and every finished catch-up, and the words for what went wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.config import Config
from simulations.network import NetworkModel
from simulations.scenarios import Story
from simulations.simnode import SimNode

INTERVAL = 0.2  # seconds between rounds
GRACE = 10.0  # tombstone_grace
REAP = 30.0  # reap_after


def lives_config(**changes: object) -> Config:
    """Rounds every 0.2 s, a grace period of 10 s and reap_after of 30 s, unless changed."""
    base: dict[str, object] = {"gossip_interval": INTERVAL, "fanout": 3, "tombstone_grace": GRACE,
                               "reap_after": REAP}
    return Config(**{**base, **changes})  # type: ignore[arg-type]


def lives_network() -> NetworkModel:
    return NetworkModel(latency=0.002, loss=0.0)  # no random loss: each story names its faults


def form_cluster(s: Story, nodes: int) -> None:
    """`nodes` nodes joining through n0, until each knows every other; then two seconds
    for their detectors to learn the rhythm of heartbeats."""
    s.add_nodes(nodes)
    s.wait_until(lambda: all(len(n.protocol.membership.members) == nodes - 1 for n in s.sim.nodes.values()),
                 30, "every node knows every other")
    s.wait(2)


def delete_while_away(s: Story, away_node: str) -> float:
    """n1 writes the key 'doomed', every node takes it, `away_node` is cut off and n1
    deletes the key: what `away_node` holds is now behind a delete. When the cut began."""
    s.write("n1", "doomed", "written by n1's first life")
    s.wait_until(s.sim.converged, 10, "every node holds the key")
    s.cut("away", [away_node])
    cut_at = s.sim.now
    s.sim.delete("n1", "doomed")
    return cut_at


def reads(s: Story, node: SimNode, key: str) -> bool:
    return node.protocol.read(key, s.sim.node_ms(node)) is not None


def times_in_words(at: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in at) + " s"


@dataclass
class Resets:
    """Every reset, as (virtual seconds, node id), seen in the nodes' reset counters."""

    story: Story
    seen: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._count: dict[str, int] = {}
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        count, before = node.protocol.stats.resets, self._count.get(node.id, 0)
        if count > before:
            self.seen.extend((self.story.sim.now, node.id) for _ in range(count - before))
            self._count[node.id] = count
            self.story.sim.note(f"{node.id} is reset ({count} resets)")

    def of(self, node_id: str) -> list[float]:
        return [at for at, n in self.seen if n == node_id]

    def apart_from(self, allowed: set[str]) -> dict[str, list[float]]:
        """The resets of nodes not in `allowed`, by node."""
        out: dict[str, list[float]] = {}
        for at, node in self.seen:
            if node not in allowed:
                out.setdefault(node, []).append(at)
        return out

    def words(self, allowed: set[str]) -> str:
        resets = sorted(self.apart_from(allowed).items())
        return "; ".join(f"{node} at {times_in_words(at)}" for node, at in resets)


@dataclass
class DeletedReads:
    """Every (node, key) that reads one of `keys` (deleted) live from now on, and when
    first; `exempt(node)` leaves out a node whose stale state the contract lets it show
    until it is reset."""

    story: Story
    keys: list[str]
    exempt: Callable[[SimNode], bool] = lambda node: False
    back: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        if not node.up or self.exempt(node):
            return
        for key in self.keys:
            if (node.id, key) not in self.back and reads(self.story, node, key):
                self.back[(node.id, key)] = self.story.sim.now

    def words(self) -> str:
        return ", ".join(f"{key} on {node} at {at:.2f} s" for (node, key), at in sorted(self.back.items()))


@dataclass
class CatchUps:
    """Each time a node finishes catching up (`bootstrapping` turns false), how many of
    `keys` it reads then: a node that has caught up holds what every node held long
    before."""

    story: Story
    keys: list[str]
    done: list[tuple[float, str, int]] = field(default_factory=list)  # (virtual s, node, keys read)

    def __post_init__(self) -> None:
        self._catching_up: dict[str, bool] = {}
        self.story.sim.watchers.append(self._watch)

    def _watch(self, node: SimNode) -> None:
        now = node.protocol.bootstrapping
        if self._catching_up.get(node.id) and not now:
            held = sum(reads(self.story, node, key) for key in self.keys)
            self.done.append((self.story.sim.now, node.id, held))
            self.story.sim.note(f"{node.id} has caught up, reading {held} of {len(self.keys)} old keys")
        self._catching_up[node.id] = now

    def short(self) -> list[tuple[float, str, int]]:
        return [d for d in self.done if d[2] < len(self.keys)]


def lost_in_words(s: Story) -> list[str]:
    """The acknowledged writes some up node neither holds nor holds something newer for,
    in words, grouped by the nodes that lack them."""
    lacking: dict[tuple[str, str, bool, str], list[str]] = {}
    for node, ack in s.sim.lost_acks():
        writer = ack.origin.rpartition("#")[0]
        lacking.setdefault((ack.key, repr(ack.value), ack.deleted, writer), []).append(node)
    groups: dict[tuple[str, ...], list[str]] = {}
    for (key, value, deleted, writer), nodes in sorted(lacking.items()):
        what = f"the delete of {key}" if deleted else f"{key}={value}"
        groups.setdefault(tuple(nodes), []).append(f"{what} (taken by {writer})")
    return [f"acknowledged writes lost on {', '.join(nodes)}: {', '.join(writes)}"
            for nodes, writes in groups.items()]


def agree(s: Story, within: float) -> float | None:
    """Virtual seconds until every up node has the same live state, or None."""
    return s.sim.wait_for(s.sim.converged, within, step=0.01)


def verdict(s: Story, problems: list[str]) -> None:
    if problems:
        s.fail("; ".join(problems))


def churn(s: Story, writers: list[str], until: float, prefix: str = "w") -> None:
    """Each second until `until`, one of `writers` (in turn) writes a new key and deletes
    the one written two seconds before: routine traffic that leaves tombstones for
    collection to take, so that every node's newest collection keeps moving."""

    def step(i: int) -> None:
        if s.sim.now >= until:
            return
        node = writers[i % len(writers)]
        if s.sim.nodes[node].up:
            s.sim.write(node, f"{prefix}{i}", i)
            if i >= 2:
                s.sim.delete(node, f"{prefix}{i - 2}")
        s.sim.after(1.0, lambda: step(i + 1))

    step(0)
