"""The benchmarks leave nothing running behind them, whatever stops a run: a part's own
`finally` stops what it started, and anything left below the run is stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A run that starts a server in a session of its own (as benchmarks.system.Process does)
# which starts a child of its own, then waits to be stopped; it prints their PIDs.
RUN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # (Ctrl-C works even if our parent ignores it)
from benchmarks.system import leaving_nothing_behind
with leaving_nothing_behind():
    server = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; "
         "c = subprocess.Popen(['sleep', '120']); print(c.pid, flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    grandchild = server.stdout.readline().strip()
    print(server.pid, grandchild, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stopped_run_leaves_no_process_behind(how: signal.Signals) -> None:
    with subprocess.Popen([sys.executable, "-c", RUN], cwd=ROOT, stdout=subprocess.PIPE, text=True) as run:
        assert run.stdout is not None
        pids = [int(p) for p in run.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        os.kill(run.pid, how)
        assert run.wait(timeout=30) != 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if _alive(p)] == []
