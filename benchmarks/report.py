"""Sections of the Markdown report, each table stamped with machine, date, settings
and command, and the plots beside it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmarks.system import load_average, machine  # noqa: E402


@dataclass
class Section:
    title: str
    command: str
    settings: str
    header: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    goals: list[tuple[str, bool]] = field(default_factory=list)  # (goal, met)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M %Z"))
    load: str = field(default_factory=load_average)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "",
                 f"*Machine:* {machine()}; load average at start {self.load}.  ",
                 f"*Date:* {self.started}.  ",
                 f"*Settings:* {self.settings}  ",
                 f"*Command:* `{self.command}`", "",
                 "| " + " | ".join(self.header) + " |",
                 "|" + "|".join(" --- " for _ in self.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.goals:
            lines += ["", "Goals:"]
            lines += [f"- {'met' if ok else '**missed**'}: {goal}" for goal, ok in self.goals]
        if self.notes:
            lines += [""] + [f"{note}" for note in self.notes]
        lines += [""] + [f"![{self.title}]({name})" for name in self.plots]
        return "\n".join(lines) + "\n"

    def save_plot(self, figure: Figure, out_dir: Path, name: str) -> None:
        figure.tight_layout()
        figure.savefig(out_dir / name, dpi=110)
        plt.close(figure)
        self.plots.append(name)


def write_report(out_dir: Path, sections: Sequence[Section], preamble: str) -> Path:
    path = out_dir / "README.md"
    body = "\n".join(s.markdown() for s in sections)
    summary = ["| part | goal | result |", "| --- | --- | --- |"]
    for s in sections:
        for goal, ok in s.goals:
            summary.append(f"| {s.title} | {goal} | {'met' if ok else '**missed**'} |")
    path.write_text(preamble + "\n" + "\n".join(summary) + "\n\n" + body)
    return path


def ms(value: float) -> str:
    return f"{value:.1f}"
