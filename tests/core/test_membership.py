"""Membership on its own (gossip/membership.py): the newer record of a member wins
(R13), a leaving member is shown as left and no target (R18), a record of our own newer
life is noted (R16), and the roster pages a node catching up learns every member from
(R7d)."""

from __future__ import annotations

import random

from gossip.config import Config
from gossip.membership import ALIVE, LEFT, MemberInfo, Membership

T0 = 1_700_000_000_000


def membership() -> Membership:
    return Membership(MemberInfo("me", "mem://me", 5, 0), Config(phi_suspect=1e9, phi_dead=1e9))


def test_the_newer_record_of_a_member_wins() -> None:
    """R13: (generation, heartbeat) orders the records; an older one changes nothing."""
    m = membership()
    m.merge([MemberInfo("p", "mem://p", 1, 7)], T0)
    m.merge([MemberInfo("p", "mem://old", 1, 3)], T0 + 1)
    assert m.members["p"].info.address == "mem://p"
    m.merge([MemberInfo("p", "mem://new", 2, 0)], T0 + 2)  # a restart: a new generation
    assert m.members["p"].info == MemberInfo("p", "mem://new", 2, 0)
    assert m.live_addresses() == ["mem://new"]


def test_a_member_that_leaves_is_left_and_no_target() -> None:
    """R18: a leaving member is shown as left, not dead, and gossip stops going to it."""
    m = membership()
    m.merge([MemberInfo("p", "mem://p", 1, 1), MemberInfo("q", "mem://q", 1, 1)], T0)
    m.merge([MemberInfo("p", "mem://p", 1, 2, left=True)], T0 + 1)
    assert m.members["p"].status == LEFT and m.members["q"].status == ALIVE
    assert m.live_addresses() == ["mem://q"]
    assert "mem://p" not in m.pick_peers(3, random.Random(0))


def test_a_record_of_our_own_newer_life_is_noted_not_taken() -> None:
    """R16: a peer knows of a newer life of ours (one started under a clock ahead)."""
    m = membership()
    m.merge([MemberInfo("me", "mem://me", 9, 0)], T0)
    assert m.outlived == 9 and "me" not in m.members


def test_the_roster_comes_in_pages_that_end() -> None:
    """R7d: pages of at most `limit` records, in id order, after a cursor."""
    m = membership()
    m.merge([MemberInfo(f"n{i}", f"mem://n{i}", 1, 1) for i in range(5)], T0)
    page, end = m.roster_page("", 2)
    assert [i.id for i in page] == ["n0", "n1"] and not end
    page, end = m.roster_page("n1", 2)
    assert [i.id for i in page] == ["n2", "n3"] and not end
    page, end = m.roster_page("n3", 2)
    assert [i.id for i in page] == ["n4"] and end
