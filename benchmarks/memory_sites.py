"""Where a node's bytes per key go, in process, by the line of ours that allocated them
(tracemalloc): `python -m benchmarks.memory_sites [KEYS]`.

Two ways a node comes to hold keys, each in a node built as `gossip-node` builds one
(SharedState, its loops not started, its store followed by the counters' tally, the change
feed and the lag histogram):

- written here: `set(key, value)` with the key and value fresh from JSON, as POST /set
  hands them over (what benchmarks/memory.py measures through a real process);
- received: the same keys written by a peer and pushed in batches of 100, each decoded by
  the node's Codec and handed to GossipProtocol.handle (what every other node holds).

The bodies are made before tracing starts; what is counted is what is still allocated
once the keys are in, so transient objects (requests, messages) are left out. The key and
value strings themselves are the data, counted apart.
"""

from __future__ import annotations

import gc
import linecache
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import orjson

from benchmarks.apply_cost import BATCH, VALUE, pushes
from node.server.settings import Settings
from node.state import SharedState
from node.wire.transport import wall_ms

ROOT = Path(__file__).resolve().parent.parent
Sites = dict[str, tuple[float, float]]  # site -> (bytes per key, blocks per key)


def _site(trace: tracemalloc.Traceback) -> str:
    """The innermost frame in the repository's code (gossip/, node/), with its line, else
    the innermost."""
    for frame in reversed(trace):
        path = Path(frame.filename)
        if path.is_relative_to(ROOT) and path.parts[len(ROOT.parts)] in ("gossip", "node"):
            line = linecache.getline(frame.filename, frame.lineno).strip()
            return f"{path.relative_to(ROOT)}:{frame.lineno} `{line[:60]}`"
    if trace[-1].filename == __file__:
        return "the key and value strings (the data)"
    return f"{Path(trace[-1].filename).name}:{trace[-1].lineno}"


def _traced(keys: int, prepare: Callable[[SharedState], Callable[[], None]]) -> Sites:
    """What `prepare(node)` returns, called under tracemalloc: bytes and blocks per key
    still allocated after it, by site."""

    async def make() -> SharedState:
        return SharedState(Settings(node_id="sites", discovery_dir="off"))

    state = anyio.run(make)
    fill = prepare(state)
    gc.collect()
    tracemalloc.start(12)
    before = tracemalloc.take_snapshot()
    fill()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for stat in after.compare_to(before, "traceback"):
        site = _site(stat.traceback)
        size[site] += stat.size_diff
        blocks[site] += stat.count_diff
    anyio.run(state.aclose)
    if len(state.protocol.store) < keys:
        raise RuntimeError(f"the node holds {len(state.protocol.store)} of {keys} keys")
    return {site: (n / keys, blocks[site] / keys) for site, n in size.items()}


def written_here(keys: int) -> Sites:
    def prepare(state: SharedState) -> Callable[[], None]:
        bodies = [orjson.dumps({"key": f"key-{i:06d}", "value": VALUE}) for i in range(keys)]

        def fill() -> None:
            for body in bodies:
                request = orjson.loads(body)  # (fresh strings, as a request's JSON gives them)
                state.set(request["key"], request["value"])

        return fill

    return _traced(keys, prepare)


def received(keys: int) -> Sites:
    def prepare(state: SharedState) -> Callable[[], None]:
        bodies = pushes(state.protocol, keys // BATCH)

        def fill() -> None:
            for body in bodies:
                state.protocol.handle(state.codec.decode(body), wall_ms())

        return fill

    return _traced(keys, prepare)


def table(sites: Sites, top: int = 8) -> list[tuple[str, float, float]]:
    """The `top` sites by bytes, then the rest together, then the total."""
    ranked = sorted(sites.items(), key=lambda kv: -kv[1][0])
    rows = [(site, b, n) for site, (b, n) in ranked[:top]]
    rest = ranked[top:]
    rows.append(("(the rest)", sum(b for _, (b, _) in rest), sum(n for _, (_, n) in rest)))
    rows.append(("total", sum(b for b, _ in sites.values()), sum(n for _, n in sites.values())))
    return rows


def main(argv: list[str]) -> None:
    keys = int(argv[0]) if argv else 100_000
    for name, profile in (("written here", written_here), ("received by push", received)):
        print(f"{name}, {keys:,} keys: bytes per key by site")
        for site, per_key, blocks in table(profile(keys)):
            print(f"  {per_key:7.1f} B  {blocks:5.2f} blocks  {site}")


if __name__ == "__main__":
    main(sys.argv[1:])
