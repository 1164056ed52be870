"""Part 4, write load: closed-loop writers POST /set to random nodes of a 10-node
cluster as fast as they are answered; samplers time how long acknowledged writes take
to be visible on every node; afterwards every acknowledged write is checked against
the converged state. Baseline, interleaved: the bare FastAPI app storing into a dict."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib import pyplot as plt

from benchmarks.loading import converge
from benchmarks.rawhttp import Connection
from benchmarks.report import Section, ms
from benchmarks.system import HOST, running, start_cluster, uvicorn_app, wait_http
from node.cluster import free_ports
from node.propagation import percentile

NODES = 10
WRITERS = 32  # concurrent closed-loop connections
KEYS = 1_000  # so later writes supersede earlier ones
SAMPLERS = 2
POLL = 0.01


@dataclass
class Run:
    seconds: float = 0.0
    acks: list[tuple[str, str, tuple[int, int], str]] = field(default_factory=list)
    refused: int = 0
    lags_ms: list[float] = field(default_factory=list)
    generator_cpu: float = 0.0  # seconds of CPU the load generator used

    @property
    def rate(self) -> float:
        return len(self.acks) / self.seconds


async def _writer(ports: list[int], run: Run, rng: random.Random, wid: int, stop: float) -> None:
    conns = {p: Connection(p) for p in ports}
    seq = 0
    try:
        while time.perf_counter() < stop:
            key, value = f"w-{rng.randrange(KEYS)}", f"{wid}-{seq}"
            seq += 1
            status, body = await conns[rng.choice(ports)].post_json("/set", {"key": key, "value": value})
            if status != 200:
                run.refused += 1
            elif "timestamp" in body:
                run.acks.append((key, value, tuple(body["timestamp"]), body["node"]))
            else:  # the baseline has no timestamps
                run.acks.append((key, value, (0, 0), ""))
    finally:
        for c in conns.values():
            c.close()


async def _sampler(ports: list[int], run: Run, rng: random.Random, sid: int, stop: float) -> None:
    """Write a fresh key through a random node, then poll every node until all read it."""
    writer = {p: Connection(p) for p in ports}
    readers = [Connection(p) for p in ports]
    n = 0
    try:
        while time.perf_counter() < stop:
            key, n = f"lag-{sid}-{n}", n + 1
            status, _ = await writer[rng.choice(ports)].post_json("/set", {"key": key, "value": n})
            acked = time.perf_counter()

            async def watch(conn: Connection, key: str = key, value: int = n) -> None:
                while (await conn.get_json(f"/get?key={key}"))[0] != 200:
                    await asyncio.sleep(POLL)

            await asyncio.wait_for(asyncio.gather(*(watch(c) for c in readers)), 30)
            run.lags_ms.append((time.perf_counter() - acked) * 1000)
            await asyncio.sleep(0.1)
    finally:
        for c in [*writer.values(), *readers]:
            c.close()


async def _load(ports: list[int], seconds: float, sample: bool, seed: int) -> Run:
    run, rng = Run(), random.Random(seed)
    cpu0, t0 = time.process_time(), time.perf_counter()
    stop = t0 + seconds
    tasks = [_writer(ports, run, random.Random(rng.random()), w, stop) for w in range(WRITERS)]
    if sample:
        tasks += [_sampler(ports, run, random.Random(rng.random()), s, stop) for s in range(SAMPLERS)]
    await asyncio.gather(*tasks)
    run.seconds = time.perf_counter() - t0
    run.generator_cpu = time.process_time() - cpu0
    return run


async def _lost(ports: list[int], run: Run) -> tuple[int, int]:
    """Acknowledged writes that are neither the final value of their key nor superseded
    by a later (timestamp, node); and keys whose final value no write acknowledged."""
    final: dict[str, tuple[str, tuple[int, int], str]] = {}
    conn = Connection(ports[-1])
    try:
        for key in sorted({a[0] for a in run.acks}):
            status, body = await conn.get_json(f"/get?key={key}")
            if status == 200:
                final[key] = (body["value"], tuple(body["timestamp"]), body["node"])
    finally:
        conn.close()
    lost = 0
    for key, value, ts, node in run.acks:
        f = final.get(key)
        if f is None or not (f == (value, ts, node) or (f[1], f[2]) > (ts, node)):
            lost += 1
    acked = {(a[0], a[1]) for a in run.acks}
    phantom = sum(1 for key, f in final.items() if (key, f[0]) not in acked)
    return lost, phantom


def run(quick: bool, command: str, out_dir: Path) -> Section:
    seconds = 10.0 if quick else 60.0
    bare_port = free_ports(1)[0]
    bare = uvicorn_app("bare-writes", "benchmarks.apps:bare", bare_port)
    cluster = start_cluster(NODES)
    try:
        with running(bare):
            wait_http(f"http://{HOST}:{bare_port}/health", bare)
            base1 = asyncio.run(_load([bare_port], seconds / 2, False, 1))
            print(f"  write baseline: {base1.rate:.0f}/s", flush=True)
            gossip = asyncio.run(_load(cluster.ports, seconds, True, 2))
            print(f"  write gossip: {gossip.rate:.0f}/s", flush=True)
            base2 = asyncio.run(_load([bare_port], seconds / 2, False, 3))
            print(f"  write baseline: {base2.rate:.0f}/s", flush=True)
        keys = len({a[0] for a in gossip.acks}) + len(gossip.lags_ms) + SAMPLERS
        settle = asyncio.run(_settle(cluster.ports, keys))
        lost, phantom = asyncio.run(_lost(cluster.ports, gossip))
    finally:
        cluster.stop()
    return _section(gossip, [base1, base2], settle, lost, phantom, seconds, command, out_dir)


async def _settle(ports: list[int], approx_keys: int) -> float:
    """Seconds after the load until every node agrees (key count read from node 1)."""
    conn = Connection(ports[0])
    keys = (await conn.get_json("/digest"))[1]["keys"]
    conn.close()
    del approx_keys
    return await converge(ports, keys, timeout=120)


def _section(gossip: Run, bases: list[Run], settle: float, lost: int, phantom: int,
             seconds: float, command: str, out_dir: Path) -> Section:  # fmt: skip
    base_acks = sum(len(b.acks) for b in bases)
    base_rate = base_acks / sum(b.seconds for b in bases)
    lags = gossip.lags_ms
    section = Section(
        "4. Write load", command,
        f"{WRITERS} closed-loop writers (one asyncio process, keep-alive HTTP/1.1), each POST "
        f"/set to a random node of {NODES} (gossip interval 0.2 s, fanout 3, eager push on), "
        f"keys drawn from {KEYS:,}, for {seconds:.0f} s; {SAMPLERS} samplers each write a fresh "
        f"key through a random node, poll all nodes every {POLL * 1000:.0f} ms from the ack until "
        f"all read it, pause 0.1 s, repeat. Baseline: the same writers against the bare FastAPI "
        f"app (dict), {seconds / 2:.0f} s before and {seconds / 2:.0f} s after the cluster run.",
        ["subject", "accepted writes/s", "writes acked", "refused", "lag p50 ms", "lag p99 ms",
         "lag max ms", "lag samples", "generator CPU %"],
    )  # fmt: skip
    for name, r in (("bare FastAPI + dict (before)", bases[0]), ("gossip cluster", gossip),
                    ("bare FastAPI + dict (after)", bases[1])):  # fmt: skip
        lag = [ms(statistics.median(lags)), ms(percentile(lags, 99)), ms(max(lags)),
               str(len(lags))] if r is gossip else ["-"] * 4  # fmt: skip
        section.rows.append([name, f"{r.rate:.0f}", f"{len(r.acks):,}", str(r.refused), *lag,
                             f"{r.generator_cpu / r.seconds * 100:.0f}"])  # fmt: skip
    ratio = gossip.rate / base_rate
    p99 = percentile(lags, 99)
    section.goals += [
        (f">= half the baseline's writes/s: {gossip.rate:.0f} vs {base_rate:.0f} ({ratio:.2f}x)",
         ratio >= 0.5),
        (f"convergence lag p99 <= 1 s: {p99:.0f} ms", p99 <= 1000),
        (f"zero acknowledged writes lost: {lost} lost of {len(gossip.acks):,}, {phantom} keys "
         f"with a value no one wrote", lost == 0 and phantom == 0),
    ]  # fmt: skip
    section.notes.append(f"All nodes agreed (equal /digest) {settle:.1f} s after the load stopped.")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.bar(["bare dict\n(before)", "gossip\ncluster", "bare dict\n(after)"],
          [bases[0].rate, gossip.rate, bases[1].rate], color=["grey", "tab:blue", "grey"])  # fmt: skip
    a.set_ylabel("accepted writes/s")
    b.hist(lags, bins=40, color="tab:orange")
    b.set_xlabel("ms from ack until every node reads the write")
    b.set_ylabel("samples")
    section.save_plot(fig, out_dir, "write_load.png")
    return section


if __name__ == "__main__":
    print(run(True, " ".join(sys.argv), Path("/tmp")).markdown())
