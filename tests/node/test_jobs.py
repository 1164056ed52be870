"""Run-once jobs (node/recipes/jobs.py): the rendezvous owner is a function of the member set alone;
a job runs on one node per tick, and the tick in whose period its owner is found dead runs
late on another; bad registrations are refused naming the problem; and,
with real workers, each tick runs on exactly one worker, and another takes over when the
owner is killed (after failure detection) or leaves (at once).

The real-process test watches 3 ticks in `make test`; `make test-recipes-long` watches
20 seconds of ticks (SINGLETON_SECONDS=20).
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.config import Config
from gossip.errors import CallerError
from gossip.membership import LEFT, MemberInfo
from node.recipes.jobs import current_tick, rendezvous_owner
from node.server.discovery import process_alive
from node.server.settings import Settings
from node.state import SharedState
from node.tools.testing import InProcessCluster, UvicornWorkers
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("SINGLETON_SECONDS", "3"))

member_sets = st.sets(st.text(min_size=1, max_size=12), min_size=1, max_size=12)
job_names = st.text(min_size=1, max_size=20)


# -- the owner --------------------------------------------------------------------------------


@given(job_names, member_sets, st.randoms())
def test_every_node_with_the_same_members_picks_the_same_owner(job: str, members: set[str], rnd: Any) -> None:
    order = sorted(members)
    shuffled = list(order)
    rnd.shuffle(shuffled)
    owner = rendezvous_owner(job, order)
    assert owner in members
    assert rendezvous_owner(job, shuffled) == owner


@given(job_names, member_sets, st.data())
def test_removing_a_non_owner_never_moves_the_job(job: str, members: set[str], data: st.DataObject) -> None:
    owner = rendezvous_owner(job, members)
    others = sorted(members - {owner})
    if others:
        gone = data.draw(st.sets(st.sampled_from(others)))
        assert rendezvous_owner(job, members - gone) == owner


@given(job_names, member_sets, st.text(min_size=1, max_size=12))
def test_a_newcomer_takes_the_job_or_leaves_it_where_it_was(job: str, members: set[str], new: str) -> None:
    before = rendezvous_owner(job, members)
    assert rendezvous_owner(job, members | {new}) in (before, new)


def test_jobs_spread_over_the_members() -> None:
    """Different jobs land on different members (no member takes every job)."""
    members = [f"127.0.0.1:{8000 + i}" for i in range(4)]
    owners = {rendezvous_owner(f"job-{i}", members) for i in range(40)}
    assert owners == set(members)


# -- in process -------------------------------------------------------------------------------

async def _noop() -> None:
    pass


@pytest.mark.anyio
async def test_bad_registrations_are_refused_naming_the_problem() -> None:
    async with InProcessCluster(1) as cluster:
        state = cluster.states[0]
        state.singleton("cleanup", every=60)(_noop)
        with pytest.raises(CallerError, match="job 'cleanup' is already registered"):
            state.singleton("cleanup", every=30)
        for every in (0, -1, float("inf"), float("nan"), True, "60"):
            with pytest.raises(CallerError, match="every must be a number of seconds"):
                state.singleton("other", every=every)  # type: ignore[arg-type]
        with pytest.raises(CallerError, match="job name must be a non-empty string"):
            state.singleton("", every=1)
        with pytest.raises(CallerError, match="makes no valid key"):
            state.singleton("x" * 300, every=1)

        def not_async() -> None:
            pass

        with pytest.raises(CallerError, match="an async function is needed"):
            state.singleton("other", every=1)(not_async)  # type: ignore[arg-type]
        state.singleton("other", every=60)(_noop)  # nothing was kept of the refused ones
        assert sorted(state._recipes.jobs._jobs) == ["cleanup", "other"]


@pytest.mark.anyio
async def test_each_tick_runs_on_one_node_and_a_cut_owner_is_replaced() -> None:
    runs: dict[int, list[int]] = defaultdict(list)
    async with InProcessCluster(3, Config.for_tests(gossip_interval=0.1)) as cluster:
        await cluster.converged()
        with anyio.fail_after(10):
            while any(len(s.members()) < 3 for s in cluster.states):
                await anyio.sleep(0.05)
        for i, state in enumerate(cluster.states):

            async def job(i: int = i) -> None:
                runs[current_tick()].append(i)

            state.singleton("tally", every=0.2)(job)
        with anyio.fail_after(10):
            while len(runs) < 5:
                await anyio.sleep(0.05)
        assert all(len(nodes) == 1 for nodes in runs.values()), dict(runs)
        cut_at = max(runs)
        owner = runs[cut_at][0]
        cluster.cut(owner)  # a partition: the owner alone on one side
        with anyio.fail_after(15):  # failure detection at 0.05 s rounds, plus a period
            while not any(i != owner for tick, nodes in runs.items() if tick > cut_at for i in nodes):
                await anyio.sleep(0.05)
        # ... and the owner, cut off, runs it too: each side of a partition runs the job
        assert any(owner in nodes for tick, nodes in runs.items() if tick > cut_at)
        cluster.heal(owner)


@pytest.mark.anyio
async def test_the_tick_whose_owner_is_found_dead_during_it_runs_late_elsewhere() -> None:
    """The owner cut off just before a tick: the others still count it at the tick, find it
    dead during the tick's period, and the new owner runs that tick then, late, not a
    period later."""
    every = 3.0  # long enough for phi to find the owner dead within the period (about 1 s)
    runs: dict[int, list[tuple[int, float]]] = defaultdict(list)  # tick -> (node, wall time) runs
    async with InProcessCluster(3) as cluster:
        with anyio.fail_after(10):
            while any(len(s.members()) < 3 for s in cluster.states):
                await anyio.sleep(0.05)
        for i, state in enumerate(cluster.states):

            async def job(i: int = i) -> None:
                runs[current_tick()].append((i, time.time()))

            state.singleton("late", every=every)(job)
        owner = cluster.names.index(rendezvous_owner("late", cluster.names))
        tick = int(time.time() // every) + 1
        if tick * every - time.time() < 0.5:
            tick += 1
        await anyio.sleep(tick * every - 0.3 - time.time())
        cluster.cut(owner)  # 0.3 s before the tick: phi is far from dead by then
        with anyio.fail_after(every + 10):
            while not any(i != owner for t, done in runs.items() if t >= tick for i, _ in done):
                await anyio.sleep(0.05)
        late = [(i, at) for i, at in runs[tick] if i != owner]
        assert len(late) == 1, dict(runs)  # the tick itself, on one of the others
        assert tick * every + 0.1 < late[0][1] < (tick + 1) * every, (late, tick * every)
        cluster.heal(owner)


def test_only_an_owner_found_dead_is_taken_over_late() -> None:
    """A member that left said goodbye, and the record of the tick it ran just before may
    come after that goodbye, by another path of the push tree: its tick is not run again
    late. One found dead, or forgotten, most likely never ran it."""
    state = SharedState(Settings(node_id="a", config=Config.for_tests(), discovery_dir="off"))
    views, now = state._views, int(time.time() * 1000)
    alive, left = MemberInfo("b", "http://b", 1, 5), MemberInfo("c", "http://c", 1, 5, True)
    state.protocol.membership.merge([alive, left], now)
    assert state.protocol.membership.members["c"].status == LEFT
    assert not views.found_dead("b") and not views.found_dead("c")
    assert views.found_dead("forgotten")


@pytest.mark.anyio
async def test_a_job_that_raises_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    ticks: list[int] = []
    async with InProcessCluster(1) as cluster:

        async def failing() -> None:
            ticks.append(current_tick())
            raise RuntimeError("boom")

        cluster.states[0].singleton("flaky", every=0.05)(failing)
        with caplog.at_level(logging.ERROR, logger="gossip.node"), anyio.fail_after(10):
            while len(ticks) < 3:
                await anyio.sleep(0.02)
    assert ticks == sorted(set(ticks))
    assert "job 'flaky' failed at tick" in caplog.text and "boom" in caplog.text


# -- real workers -----------------------------------------------------------------------------


def _runs(runs_dir: Path) -> dict[int, list[int]]:
    """tick -> the pids that ran it, from each worker's file."""
    by_tick: dict[int, list[int]] = defaultdict(list)
    for file in runs_dir.glob("*.runs"):
        for line in file.read_text().splitlines():
            tick, pid = line.split()
            by_tick[int(tick)].append(int(pid))
    return by_tick


def _tick_now() -> int:
    return time.time_ns() // 1_000_000_000  # every = 1 s


def test_each_tick_runs_on_exactly_one_worker_and_another_takes_over() -> None:
    runs_dir = Path(tempfile.mkdtemp(prefix="singleton-runs-"))
    env = {"SINGLETON_EVERY": "1", "SINGLETON_RUNS_DIR": str(runs_dir), "GOSSIP_INTERVAL": "0.1"}
    with UvicornWorkers("examples.singleton_app:app", workers=4, env=env, cwd=ROOT):
        first = _tick_now() + 1  # every worker sees all four alive from here on
        wait_until(lambda: _tick_now() > first + SECONDS, timeout=SECONDS + 10, what="ticks to pass")
        runs = _runs(runs_dir)
        ticks = {t: runs.get(t, []) for t in range(first, _tick_now())}
        assert all(len(pids) == 1 for pids in ticks.values()), ticks  # once each, none missed

        # a clean leave (SIGTERM) of the owner: no tick is missed, none runs twice
        owner = runs[max(ticks)][0]
        os.kill(owner, signal.SIGTERM)
        left_at = _tick_now()
        wait_until(lambda: not process_alive(owner), timeout=10, what="the worker to leave")
        gone_at = _tick_now()
        wait_until(lambda: _tick_now() > gone_at + 1, timeout=10, what="ticks after the leave")
        runs = _runs(runs_dir)
        ticks = {t: runs.get(t, []) for t in range(left_at + 1, gone_at + 2)}
        # (until it has said goodbye, the leaving owner may still run a tick itself)
        assert all(len(pids) == 1 for pids in ticks.values()), ticks
        assert all(owner not in pids for t, pids in ticks.items() if t > gone_at), ticks

        # kill -9 of the owner: another worker runs the job once the owner is found dead
        owner = runs[max(ticks)][0]
        os.kill(owner, signal.SIGKILL)
        killed_at = _tick_now()
        # failure detection takes about 18 rounds (docs/PROTOCOL.md R17): 2 s, plus a period
        def taken_over() -> bool:
            return any(p != owner for t, pids in _runs(runs_dir).items() if t > killed_at for p in pids)

        wait_until(taken_over, timeout=3 * (18 * 0.1 + 1), what="another worker to take the job over",
                   detail=lambda: sorted(_runs(runs_dir).items())[-6:])
        assert all(owner not in pids for t, pids in _runs(runs_dir).items() if t > killed_at + 1)
