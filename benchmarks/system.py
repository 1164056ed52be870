"""Machine facts, tool installation, and processes started and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from node.tools.local_cluster import LocalCluster

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG_DIR = Path(tempfile.gettempdir()) / "gossip-bench-logs"


def ensure_debian_tools(commands: dict[str, str]) -> None:
    """Install the Debian package of each missing command (command -> package)."""
    missing = sorted({pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   timeout=600)


def machine() -> str:
    """One line naming the machine, for every table."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} x {cpu}, {mem_gb:.0f} GB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size in MiB (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, theirs, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_descendants(grace: float = 5.0) -> list[int]:
    """Stop every process still running below this one: SIGTERM, then SIGKILL for any
    still there after `grace` seconds. Returns the PIDs it found."""
    found = descendants(os.getpid())
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(map(_running, found)):
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass  # reap our own children, so they do not linger as zombies
        time.sleep(0.05)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


@contextlib.contextmanager
def leaving_nothing_behind() -> Iterator[None]:
    """A run that SIGTERM or SIGHUP ends as Ctrl-C does (every `finally` runs, so each
    part stops what it started), and after which anything still running below us is
    stopped by PID and named. (Only SIGKILL escapes it.)"""

    def end(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, end) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        left = stop_descendants()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if left:
            print(f"stopped {len(left)} processes left running: {' '.join(map(str, left))}", file=sys.stderr)


class Process:
    """A child process we started: stopped by its PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = LOG_DIR / f"{name}.log"
        LOG_DIR.mkdir(exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")


def uvicorn_app(
    name: str, app: str, port: int, env: dict[str, str] | None = None, factory: bool = False
) -> Process:
    """A baseline app under uvicorn with the settings `gossip-node` uses: one worker,
    default loop and HTTP implementation, log level warning, no access log."""
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log"]
    if factory:
        argv.append("--factory")
    return Process(name, argv, env)


def wait_http(url: str, proc: Process | None = None, timeout: float = 60.0) -> None:
    """Poll `url` until it answers 200, with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    """Stop every process on the way out, whatever happened."""
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def start_cluster(nodes: int, eager_push: bool = True, interval: float = 0.2) -> LocalCluster:
    """A started LocalCluster, with deadlines that allow for a busy machine."""
    cluster = LocalCluster(nodes, interval=interval, eager_push=eager_push)
    cluster.start(timeout=60.0 + 3.0 * nodes)
    return cluster
