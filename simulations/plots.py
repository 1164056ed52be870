"""PNG plots of a sweep: convergence against N with theory overlaid, and spread over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulations.experiments import Summary, Trial
from simulations.theory import MONTE_CARLO, push_pull_rounds, push_rounds


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "gossip-sim"
    import matplotlib.pyplot as plt

    return plt


def rounds_vs_n(summaries: Sequence[Summary], path: Path) -> None:
    """Mean rounds to 100% against N, one line per (mode, fanout, loss, eager), with
    the textbook curves and the reference Monte Carlo table's points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    lines: dict[str, list[tuple[int, float]]] = {}
    for s in summaries:
        st = s.setup
        label = f"{st.mode} k={st.fanout} loss={st.loss:g}" + (" eager" if st.eager else "")
        lines.setdefault(label, []).append((st.nodes, s.rounds[1.0][0]))
    for label, points in sorted(lines.items()):
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", label=f"sim: {label}")
    ns = sorted({s.setup.nodes for s in summaries} | {10, 10_000})
    grid = [round(ns[0] * (ns[-1] / ns[0]) ** (i / 50)) for i in range(51)]
    ax.plot(grid, [push_rounds(n) for n in grid], "k--", label="theory push k=1: log2 N + ln N")
    ax.plot(grid, [push_pull_rounds(n) for n in grid], "k:",
            label="theory push-pull k=1: log3 N + ln ln N")
    swept = {(s.setup.fanout, s.setup.loss) for s in summaries}
    for (n, k, loss), ref in sorted(MONTE_CARLO.items()):
        if (k, loss) not in swept:
            continue  # a reference for settings this sweep did not run
        for mode, marker in (("push", "x"), ("push-pull", "+")):
            ax.plot([n], [ref[mode][0]], marker, color="grey", markersize=9)
    ax.plot([], [], "x", color="grey", label="Monte Carlo (reference): push")
    ax.plot([], [], "+", color="grey", label="Monte Carlo (reference): push-pull")
    ax.set_xscale("log")
    ax.set_xlabel("nodes N")
    ax.set_ylabel("rounds until every node holds the write (mean)")
    ax.set_title("Convergence against cluster size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def spread_over_time(curves: Sequence[tuple[str, list[Trial]]], path: Path) -> None:
    """Mean fraction of nodes holding the write against rounds since it was made."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, trials in curves:
        longest = max(len(t.curve) for t in trials)
        xs, ys = [0.0], [1 / trials[0].nodes]
        for r in range(longest):
            xs.append(r + 1)
            ys.append(sum(t.curve[min(r, len(t.curve) - 1)][1] for t in trials) / len(trials))
        ax.plot(xs, ys, marker=".", label=label)
    ax.set_xlabel("rounds since the write")
    ax.set_ylabel("fraction of nodes holding it (mean over trials)")
    ax.set_title("Spread of one write over time")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
