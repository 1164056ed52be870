"""`--data-dir`: the node's state in one snapshot file, replaced atomically, so a node
restarted with the same directory serves its old state at once."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gossip.codec import Codec
from gossip.errors import PeerError
from gossip.messages import Snapshot

FILENAME = "snapshot.json"


class SnapshotFile:
    def __init__(self, directory: Path, codec: Codec) -> None:
        self.path = directory / FILENAME
        self.codec = codec
        directory.mkdir(parents=True, exist_ok=True)

    def load(self) -> Snapshot | None:
        """The saved snapshot; None if there is none. A damaged or foreign file is an
        error, not an empty start: starting empty would quietly lose the state."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return self.codec.decode_snapshot(data)
        except PeerError as exc:
            raise RuntimeError(f"cannot use {self.path}: {exc}; move it away to start empty") from exc

    def save(self, snapshot: Snapshot) -> None:
        partial = self.path.with_suffix(".tmp")
        with open(partial, "wb") as f:
            f.write(self.codec.encode_snapshot(snapshot))
            f.flush()
            os.fsync(f.fileno())
        partial.replace(self.path)  # readers (and a crash) see the old or the new file
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
