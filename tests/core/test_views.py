"""Sampled member views (PROTOCOL.md R13) and the failure detector's expectations under
them (R17): a view is bounded, starts with ourselves, carries the news first, and
reaches every member in time; a member heard of only through sampled views is not taken
for dead while its heartbeat is merely rare."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.config import Config
from gossip.errors import ConfigError
from gossip.membership import ALIVE, DEAD, MemberInfo, Membership, news_sends

T0 = 1_700_000_000_000
DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=60)


def infos(count: int, generation: int = 1) -> list[MemberInfo]:
    return [MemberInfo(f"m{i}", f"mem://m{i}", generation, 1) for i in range(count)]


def membership(members: int, view_size: int, **changes: object) -> Membership:
    me = MemberInfo("me", "mem://me", 1, 1)
    m = Membership(me, Config(view_size=view_size, **changes))  # type: ignore[arg-type]
    m.merge(infos(members), T0)
    return m


@DETERMINISTIC
@given(st.integers(0, 300), st.integers(2, 64), st.integers(0, 2**32))
def test_a_view_is_bounded_starts_with_us_and_repeats_nobody(members: int, size: int, seed: int) -> None:
    """R13: a view has at most view_size members, ourselves first, each once."""
    m = membership(members, size)
    rng = random.Random(seed)
    for _ in range(5):
        view = m.view(rng)
        assert view[0] == m.me
        assert len(view) == min(size, members + 1)
        assert len({info.id for info in view}) == len(view)


@DETERMINISTIC
@given(st.integers(60, 300), st.integers(4, 40), st.integers(1, 30), st.integers(0, 2**32))
def test_news_comes_first_newest_first(members: int, size: int, changed: int, seed: int) -> None:
    m = membership(members, size)
    m.news.clear()  # the joins of the set-up are old news
    restarted = infos(changed, generation=2)  # new lives: news
    for info in restarted:
        m.merge([info], T0 + 1)
    view = m.view(random.Random(seed))
    slots = min(changed, (size - 1) // 2)
    newest_first = [info.id for info in reversed(restarted)][:slots]
    assert [info.id for info in view[1 : 1 + slots]] == newest_first
    assert all(info.generation == 2 for info in view[1 : 1 + slots])


def test_news_is_sent_a_bounded_number_of_times() -> None:
    m = membership(200, 10)
    m.news.clear()
    m.merge([MemberInfo("m7", "mem://m7", 2, 1)], T0 + 1)  # a restart
    sends = news_sends(201)
    rng = random.Random(1)
    for _ in range(sends):
        assert m.view(rng)[1].id == "m7"
    assert "m7" not in m.news
    # An address change, a goodbye and a join are news too; a heartbeat is not.
    m.merge([MemberInfo("m8", "mem://elsewhere", 1, 2)], T0 + 2)
    m.merge([MemberInfo("m9", "mem://m9", 1, 2, left=True)], T0 + 2)
    m.merge([MemberInfo("new", "mem://new", 1, 1)], T0 + 2)
    m.merge([MemberInfo("m10", "mem://m10", 1, 5)], T0 + 2)
    assert list(m.news) == ["m8", "m9", "new"]


@DETERMINISTIC
@given(st.integers(50, 400), st.integers(2, 48), st.integers(0, 2**32))
def test_every_member_is_sent_in_time(members: int, size: int, seed: int) -> None:
    """A member's chance to be left out of one view is 1 - (size - 1) / N, so all are
    sent within 30 N / (size - 1) views but with a chance of about N e^-30. (R13)"""
    m = membership(members, size)
    m.news.clear()
    rng = random.Random(seed)
    seen: set[str] = set()
    for _ in range(30 * members // (size - 1) + 1):
        seen.update(info.id for info in m.view(rng))
    assert seen == {"me", *(info.id for info in infos(members))}


def test_a_view_that_fits_is_whole_and_owes_no_news() -> None:
    m = membership(20, 48)
    assert len(m.view(random.Random(1))) == 21
    assert not m.news
    # The decoder's limit caps the view size.
    assert Membership(m.me, Config(view_size=48, max_members_per_message=8)).view_size == 8


def test_the_detector_expects_heartbeats_as_often_as_views_bring_them() -> None:
    interval_ms = 1000.0
    # Whole views: a heartbeat every round, as before sampling.
    assert membership(100, 1024).heartbeat_interval_ms() == interval_ms
    assert membership(40, 48).heartbeat_interval_ms() == interval_ms
    # Sampled: 2 x fanout messages a round, each with view_size - 1 of the N - 1 others,
    # and about one sighting in two moves the heartbeat.
    sampled = membership(999, 48)
    assert sampled.heartbeat_interval_ms() == pytest.approx(interval_ms * 2 * 999 / (2 * 3 * 47))
    # The first estimate of a member that joins is that, not one interval.
    sampled.merge([MemberInfo("late", "mem://late", 1, 1)], T0)
    first = sampled.members["late"].detector.mean()
    assert first == pytest.approx(interval_ms * 2 * 999 / (2 * 3 * 47))


def test_a_member_heard_of_rarely_is_not_taken_for_dead() -> None:
    """Twenty rounds of silence: dead by the estimate of one interval (phi 8.7), alive by
    the sampled one (phi 1.2), which still gives it up after about 18 expected intervals. (R17)"""
    whole, sampled = membership(999, 1024), membership(999, 48)
    now = T0 + 20_000
    whole.update(now)
    sampled.update(now)
    assert all(m.status == DEAD for m in whole.members.values())
    assert all(m.status == ALIVE for m in sampled.members.values())
    expected = sampled.heartbeat_interval_ms()
    sampled.update(T0 + int(19 * expected))
    assert all(m.status == DEAD for m in sampled.members.values())


@pytest.mark.parametrize("size", [1, 0, -3, 2.5, True])
def test_a_view_size_below_two_or_not_whole_is_refused(size: object) -> None:
    with pytest.raises(ConfigError, match="view_size"):
        Config(view_size=size)  # type: ignore[arg-type]
