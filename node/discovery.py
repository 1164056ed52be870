"""How the workers of one host find each other with no configuration: each registers
its gossip address in a per-cluster directory and removes itself on the way out;
entries of processes that died without cleaning up are skipped and removed."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


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
            if _running(pid):
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
