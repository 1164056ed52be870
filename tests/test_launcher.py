"""The launcher stops every process it started, on SIGTERM and on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.discovery import process_alive

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_launcher_leaves_nothing_behind(signum: int) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "node.cluster", "--nodes", "3", "--base-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pids: list[int] = []
    lines = []
    try:
        assert launcher.stdout is not None
        deadline = time.monotonic() + 60
        for line in launcher.stdout:
            lines.append(line)
            match = re.match(r"\s+n\d+\s+(\d+)\s+http://", line)
            if match:
                pids.append(int(match.group(1)))
            if "Ctrl-C stops every node" in line or time.monotonic() > deadline:
                break
        assert len(pids) == 3, "".join(lines)
        assert all(process_alive(p) for p in pids)
        launcher.send_signal(signum)
        out, _ = launcher.communicate(timeout=30)
        assert launcher.returncode == 0, out
        assert "stopped 3 nodes" in out
        deadline = time.monotonic() + 10
        while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in pids if process_alive(p)]
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
