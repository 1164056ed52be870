"""What applying pushed entries costs a node, in process: the number to watch on the write
path, since every write is applied on every node.

A peer writes BATCH keys and its outbox packs them into one push (a Rumor, as it sends it
to a peer), encoded by the one Codec. The receiver is a node built as `gossip-node` builds
one (SharedState, its loops not started): the counters' tally, the change feed and the
replication lag histogram follow its store, as they do in a running node. Each batch is
decoded by the receiver's Codec and handed to GossipProtocol.handle; the figure is CPU
microseconds per entry, the median over the batches. The baseline, timed on the same
bytes in the same run: the JSON parsed and its keys and values put in a dict (what the
least a process taking these writes would do).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson

from benchmarks.report import Section
from gossip.codec import Codec
from gossip.protocol import GossipProtocol
from node.server.settings import Settings
from node.state import SharedState
from node.wire.transport import wall_ms

BATCH = 100
VALUE = "m" * 100
PEER_ADDRESS = "http://127.0.0.1:1"


def pushes(receiver: GossipProtocol, batches: int, batch: int = BATCH) -> list[bytes]:
    """`batches` pushes of `batch` new keys each, from a peer that knows `receiver`, each
    as the peer's outbox sends it, encoded. Written in the past, so that the receiver's
    clock takes them."""
    start = wall_ms() - batches - 1_000
    peer = GossipProtocol(receiver.config, "peer", PEER_ADDRESS, random.Random(1), start)
    peer.membership.merge([receiver.membership.me], start)
    codec, bodies = Codec(receiver.config), []
    for b in range(batches):
        for i in range(batch):
            peer.write(f"key-{b * batch + i:06d}", VALUE, start + b)
        [push] = peer.take_rumors()
        peer.push_ended(push, True)
        bodies.append(codec.encode(push.message))
    return bodies


def _cpu_us(run: Callable[[], object]) -> float:
    started = time.process_time_ns()  # this process's CPU time: others' work weighs little
    run()
    return (time.process_time_ns() - started) / 1000


def _into_dict(body: bytes, table: dict[str, Any]) -> None:
    """The baseline: the push's JSON parsed, each item's key and value put in a dict."""
    for _cover, items in orjson.loads(body)["groups"]:
        for item in items:
            table[item[3]] = item[4]


def measure(batches: int = 300) -> dict[str, float]:
    """Median CPU microseconds per entry over `batches` batches of BATCH: decoding, handling
    (applying), both; and the baseline's."""

    async def make() -> SharedState:
        return SharedState(Settings(node_id="apply", discovery_dir="off"))

    state = anyio.run(make)
    protocol, codec = state.protocol, state.codec
    bodies = pushes(protocol, batches)
    runs: dict[str, list[float]] = {"decode": [], "handle": [], "baseline": []}
    table: dict[str, Any] = {}
    applied = protocol.stats.entries_applied
    for body in bodies:
        message: list[Any] = []
        runs["decode"].append(_cpu_us(lambda: message.append(codec.decode(body))))  # noqa: B023
        runs["handle"].append(_cpu_us(lambda: protocol.handle(message[0], wall_ms())))  # noqa: B023
        runs["baseline"].append(_cpu_us(lambda: _into_dict(body, table)))  # noqa: B023
    anyio.run(state.aclose)
    if protocol.stats.entries_applied - applied != batches * BATCH or len(table) != batches * BATCH:
        raise RuntimeError(f"applied {protocol.stats.entries_applied - applied} of {batches * BATCH} entries")
    totals = [d + h for d, h in zip(runs["decode"], runs["handle"], strict=True)]
    figures = {name: statistics.median(r) / BATCH for name, r in runs.items()}
    figures["total"] = statistics.median(totals) / BATCH
    return figures


def run(quick: bool, command: str, out_dir: Path) -> Section:
    batches = 100 if quick else 300
    figures = measure(batches)
    print(f"  apply: {figures}", flush=True)
    section = Section(
        "Applying pushed entries", command,
        f"in process (benchmarks/apply_cost.py): {batches} pushes of {BATCH} new keys each "
        f"({len(VALUE)}-byte string values) from one peer, as its outbox packs them, encoded; a node "
        "built as `gossip-node` builds it (its store followed by the counters' tally, the change feed "
        "and the lag histogram, its loops not started) decodes each with its Codec and hands it to "
        "GossipProtocol.handle. CPU microseconds per entry, median over the pushes; the baseline "
        "parses the same bytes as JSON into a dict of key -> value, interleaved with them.",
        ["path", "us per entry", "vs baseline"],
    )
    base = figures["baseline"]
    for name, label in (("decode", "decode (Codec)"), ("handle", "apply (GossipProtocol.handle)"),
                        ("total", "decode + apply"), ("baseline", "baseline: JSON into a dict")):
        section.rows.append([label, f"{figures[name]:.2f}", f"{figures[name] / base:.1f}x"])
    if quick:
        section.notes.append("Quick mode: fewer pushes, expect a wider spread.")
    return section


if __name__ == "__main__":
    print(run("--quick" in sys.argv, " ".join(sys.argv), Path("/tmp")).markdown())
