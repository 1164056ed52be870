"""`python -m benchmarks.profile`: py-spy profiles of one node on the hot paths (reads
under wrk, sequential propagated writes, sustained write load, idling), summarised per
layer and per function into docs/benchmarks/profiles/. Needs root (or ptrace rights)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks import propagation, write_load
from benchmarks.rawhttp import Connection
from benchmarks.system import ROOT, machine, start_cluster
from benchmarks.wrk import run_wrk
from node.tools.local_cluster import LocalCluster

# Where a sample's innermost frame lives decides the layer it is charged to.
LAYERS = [
    ("gossip core (gossip/)", r"^gossip/"),
    ("node (node/)", r"^node/"),
    ("HTTP client (httpx, httpcore)", r"^(httpx|httpcore)/"),
    ("HTTP server (uvicorn, h11)", r"^(uvicorn|h11)/"),
    ("pydantic", r"^pydantic(_core)?/"),
    ("FastAPI, Starlette", r"^(fastapi|starlette)/"),
    ("anyio (thread pool, tasks)", r"^anyio/"),
    ("json", r"^json/"),
    ("hmac, hashlib", r"^(hmac|hashlib)\.py"),
    ("asyncio, selectors, sockets", r"^(asyncio/|selectors\.py|socket\.py|ssl\.py)"),
    ("threading, queue", r"^(threading\.py|queue\.py|concurrent/)"),
]


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")  # installed into the venv
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        sys.exit("py-spy is missing: pip install -e '.[bench]'")
    return found


def _record(pid: int, seconds: float, out: Path) -> None:
    subprocess.run([_py_spy(), "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", "200",
                    "--gil", "--format", "raw", "-o", str(out), "--nonblocking"],
                   check=True, capture_output=True, timeout=seconds + 60)


def summarize(raw: Path, title: str) -> str:
    layers: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count, frames = int(count_text), stack.split(";")
        total += count
        own[_short(frames[-1])] += count
        for name in {_short(f) for f in frames if re.match(r"(gossip|node)/", _path(f))}:
            inclusive[name] += count
        for frame in reversed(frames):
            layer = next((n for n, pattern in LAYERS if re.match(pattern, _path(frame))), None)
            if layer is not None:
                layers[layer] += count
                break
        else:
            layers["other (interpreter, C code)"] += count
    lines = [f"# {title}", "", f"{total} samples at 200 Hz of the thread holding the GIL (py-spy --gil)", "",
             "## Share of samples by layer of the innermost known frame"]
    lines += [f"{n / total * 100:5.1f}%  {name}" for name, n in layers.most_common()]
    lines += ["", "## Top 25 functions by own samples"]
    lines += [f"{n / total * 100:5.1f}%  {name}" for name, n in own.most_common(25)]
    lines += ["", "## Project functions by inclusive samples (top 25)"]
    lines += [f"{n / total * 100:5.1f}%  {name}" for name, n in inclusive.most_common(25)]
    return "\n".join(lines) + "\n"


def _path(frame: str) -> str:
    """'name (pkg/mod.py:12)' -> 'pkg/mod.py' (py-spy prints paths relative to sys.path)."""
    match = re.search(r"\(([^()]*?):\d+\)$", frame)
    return match.group(1) if match else ""


def _short(frame: str) -> str:
    """'name (path/to/site-packages/pkg/mod.py:12)' -> 'name (pkg/mod.py:12)'."""
    return re.sub(r"\(.*?(?:site-packages|lib/python3\.\d+|work/main)/", "(", frame)


def _while(load: Callable[[], object], pid: int, seconds: float, out: Path) -> None:
    """Record `pid` for `seconds` while `load` runs in a thread."""
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    time.sleep(1.0)
    _record(pid, seconds, out)
    worker.join(timeout=seconds + 120)


@contextmanager
def _cluster(nodes: int) -> Iterator[LocalCluster]:
    cluster = start_cluster(nodes)
    try:
        yield cluster
    finally:
        cluster.stop()


def profile_read(out: Path, seconds: float) -> None:
    with _cluster(5) as c:
        httpx.post(c.urls[0] + "/set", json={"key": "k", "value": "v" * 100}).raise_for_status()
        time.sleep(1)
        _while(lambda: run_wrk(f"{c.urls[-1]}/get?key=k", seconds + 2, 32), c.pids[-1], seconds, out)


def profile_propagation(out: Path, seconds: float) -> None:
    with _cluster(10) as c:  # writes go to random nodes; every node relays and serves
        _while(lambda: asyncio.run(_writes(c, int(seconds * 12))), c.pids[1], seconds, out)


async def _writes(c: LocalCluster, writes: int) -> None:
    conns = [Connection(p) for p in c.ports]
    for n in range(writes):
        await propagation._gossip_write(conns, n % len(conns), f"p-{n % 20}")
        await asyncio.sleep(0.02)


def profile_writes(out: Path, seconds: float) -> None:
    with _cluster(10) as c:
        _while(lambda: write_load.load(c.ports, seconds + 3, "profile"), c.pids[1], seconds, out)


def profile_idle(out: Path, seconds: float) -> None:
    with _cluster(10) as c:
        time.sleep(2)
        _record(c.pids[1], seconds, out)


PROFILES = {"read": profile_read, "propagation": profile_propagation,
            "writes": profile_writes, "idle": profile_idle}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    p.add_argument("--only", nargs="+", choices=list(PROFILES), default=list(PROFILES))
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "profiles")
    args = p.parse_args()
    _py_spy()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        raw = args.out / f"{name}.raw.txt"
        PROFILES[name](raw, args.seconds)
        title = (f"Profile: {name} ({machine()}, {time.strftime('%Y-%m-%d %H:%M')}, "
                 f"`python -m benchmarks.profile --only {name}`)")
        (args.out / f"{name}.md").write_text(summarize(raw, title))
        raw.unlink()
        print(f"profile {name}: {args.out / (name + '.md')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
