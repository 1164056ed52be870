"""How the workers of one host find each other with no configuration: each registers
its gossip address in a per-cluster directory and removes itself on the way out;
entries of processes that died without cleaning up are skipped and removed."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process runs: it exists, and is not a zombie awaiting its reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # with /proc: it has just gone
    except (OSError, IndexError):
        return True  # nothing to ask: os.kill saw it


class HostDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._mine: Path | None = None

    def peers(self) -> list[str]:
        """Gossip addresses of the other live processes registered here."""
        found = []
        for file in sorted(self.path.glob("*.json")):
            try:
                record = json.loads(file.read_text())
                pid, address = int(record["pid"]), str(record["address"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written, or not ours
            if pid == os.getpid():
                continue
            if process_alive(pid):
                found.append(address)
            else:
                with contextlib.suppress(OSError):
                    file.unlink()
        return found

    def register(self, node_id: str, address: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in node_id)
        target = self.path / f"{name}.json"
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps({"pid": os.getpid(), "address": address, "id": node_id}))
        partial.replace(target)  # atomic: readers never see half a record
        self._mine = target

    def unregister(self) -> None:
        if self._mine is not None:
            with contextlib.suppress(OSError):
                self._mine.unlink()
            self._mine = None
