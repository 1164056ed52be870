"""A plain progress bar on stderr (stdout stays byte-identical for a given seed)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "", stream: TextIO | None = None) -> None:
        self.total, self.done, self.label = max(1, total), 0, label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()

    def __call__(self, steps: int = 1) -> None:
        self.done += steps
        if self.enabled:
            filled = 30 * self.done // self.total
            bar = "#" * filled + "." * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
