"""What a chaos run's nodes were: how many, on which hosts, with which settings. A run
directory keeps it in setup.json; one made before that file existed gets the suite's
defaults, which every run so far used."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from gossip.config import Config

SAVE_EVERY = 1.0  # seconds between a node's snapshots to --data-dir (node/server/pump.py's SAVE_EVERY)
SAVE_TIME = 0.5  # seconds a snapshot may take to write on a loaded machine, on top of SAVE_EVERY
FILE = "setup.json"
PROBE_TIMEOUT = 0.4  # of the probe interval: the rest leaves room for the indirect probes (R23)


@dataclass(frozen=True)
class Setup:
    seed: int = 0
    hosts: int = 3
    nodes_per_host: int = 2
    interval: float = 0.25  # --interval
    max_offset: float = 2.0  # --max-offset
    probe_interval: float = 0.0  # --probe-interval (R23; 0: off), with --probe-timeout PROBE_TIMEOUT of it
    # The node's defaults for what the suite does not set.
    jitter: float = Config.jitter
    request_timeout: float = Config.request_timeout
    save_every: float = SAVE_EVERY

    @property
    def names(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.hosts * self.nodes_per_host + 1)]

    def host_of(self, name: str) -> int:
        """n1, n2 on h1; n3, n4 on h2; ... (chaos.nodes.Fleet numbers them so)."""
        return (int(name.removeprefix("n")) - 1) // self.nodes_per_host + 1

    def on_host(self, host: int) -> list[str]:
        return [n for n in self.names if self.host_of(n) == host]

    @property
    def spread(self) -> float:
        """Seconds within which a node that reaches another host passes a write on: its
        push leaves at once and, if that push is lost, fails after the request timeout;
        the next round's exchange (at most one interval, stretched by the jitter, later)
        carries it in any case."""
        return self.request_timeout + self.interval * (1 + self.jitter)

    @property
    def unsaved(self) -> float:
        """Seconds before a kill -9 in which an acknowledged write may be missing from the
        data directory: the snapshot is written every `save_every` seconds when the state
        changed, and writing it takes up to SAVE_TIME."""
        return self.save_every + SAVE_TIME

    @property
    def probe_timeout(self) -> float:
        return round(PROBE_TIMEOUT * self.probe_interval, 3)

    def save(self, run_dir: Path) -> None:
        (run_dir / FILE).write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> Setup:
        """The run's setup.json; without one, the defaults and the seed of the directory's
        name (seed-N) or result.json."""
        if (saved := run_dir / FILE).exists():
            return cls(**json.loads(saved.read_text()))
        seed = 0
        if (result := run_dir / "result.json").exists():
            seed = int(json.loads(result.read_text())["seed"])
        elif found := re.fullmatch(r"seed-(\d+)", run_dir.name):
            seed = int(found.group(1))
        return cls(seed=seed)
