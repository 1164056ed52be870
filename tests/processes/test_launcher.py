"""The launcher (`gossip-cluster`, what `make run` runs) as a user runs it: a node killed
from outside is shown down with what the others think of it while the rest keep serving,
`status` and `restart` work, and SIGTERM or Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from node.server.discovery import process_alive
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """`python -m node.tools.cluster` with its output read line by line and commands typed on
    its stdin."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.tools.cluster", "--nodes", "3", "--base-port", "0", *args],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.pids: dict[str, int] = {}
        self.urls: dict[str, str] = {}
        node_line = r"^\s+(n\d+)\s+(\d+)\s+(http://\S+)$"
        while (match := self.expect(f"{node_line}|running; Ctrl-C stops every node", 60))[1]:
            self.pids[match[1]], self.urls[match[1]] = int(match[2]), match[3]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The next line of output matching `pattern` (AssertionError, with the output, if none comes)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.output))
            self.output.append(line)
            if match := re.search(pattern, line):
                return match

    def type(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self, signum: int, pids: list[int]) -> None:
        """Send `signum`; the launcher exits 0 having stopped every one of `pids`."""
        self.proc.send_signal(signum)
        self.expect(rf"stopped {len(pids)} nodes")
        assert self.proc.wait(30) == 0, "\n".join(self.output)
        wait_until(lambda: not any(process_alive(p) for p in pids), 10, "every node process to be gone")

    def close(self, pids: list[int]) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        for pid in pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_every_node() -> None:
    launcher = Launcher()
    try:
        assert sorted(launcher.pids) == ["n1", "n2", "n3"], launcher.output
        assert all(process_alive(p) for p in launcher.pids.values())
        launcher.stop(signal.SIGTERM, list(launcher.pids.values()))
    finally:
        launcher.close(list(launcher.pids.values()))


def test_a_node_killed_from_outside_is_shown_down_and_ctrl_c_still_stops_everything() -> None:
    launcher = Launcher("--interval", "0.1")
    pids = list(launcher.pids.values())
    try:
        os.kill(launcher.pids["n3"], signal.SIGKILL)  # from outside, not through the launcher
        launcher.expect(r"n3 \(pid \d+\) is down \(killed by SIGKILL\); the others keep serving")
        launcher.expect(r"n3 down \(killed by SIGKILL\): dead on n1, n2$")
        with httpx.Client(timeout=5) as client:
            members = client.get(launcher.urls["n1"] + "/members").json()["members"]
            assert {m["id"]: m["status"] for m in members}["n3"] == "dead"
            written = client.post(launcher.urls["n2"] + "/set", json={"key": "k", "value": 1})
            assert written.status_code == 200  # the rest keep serving

        launcher.type("status")
        launcher.expect(r"^\s+node\s+state\s+pid\s+keys\s+digest\s+its members$")
        for node in ("n1", "n2"):
            launcher.expect(rf"^\s+{node}\s+up\s+\d+\s+1\s+[0-9a-f]{{8}}\s+2 alive, 1 dead \(n3\)$")
        launcher.expect(r"^\s+n3\s+down \(killed by SIGKILL\)\s+\d+\s+-\s+-\s+dead on n1, n2$")
        launcher.expect(r"^\s+digests: the 2 nodes that answered agree$")

        launcher.type("restart n3")
        pids.append(int(launcher.expect(r"restart n3: done \(pid (\d+), up\)")[1]))
        launcher.expect(r"n3 up: alive on n1, n2$")
        launcher.stop(signal.SIGINT, [launcher.pids["n1"], launcher.pids["n2"], pids[-1]])
    finally:
        launcher.close(pids)
