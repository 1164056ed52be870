"""What a peer lacks, and the deltas that carry it: per writer, our entries past the
peer's mark, in timestamp order, cut to one message's budgets (R9, R10); and, for a peer
whose digest we do not know, a guess at what it holds (R12)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from gossip.clock import ZERO, Timestamp
from gossip.config import Config
from gossip.messages import WriterDelta
from gossip.retired import BUCKETS, Holdings
from gossip.store import Entry, Store
from gossip.wire_encode import entry_size

Lack = tuple[str, Timestamp, Timestamp]  # (writer, how far the peer holds it, how far we do)


def lacking(store: Store, peer: Holdings) -> list[Lack]:
    """Every writer (retired ones too) we hold further than the peer does, by what its
    summary shows it holds. A writer whose mark its summary does not tell is left for a
    later exchange."""
    behind = []
    for writer, mine in store.watermarks.items():
        theirs = peer.mark(writer)
        if theirs is not None and theirs < mine:
            behind.append((writer, theirs, mine))
    for b in range(BUCKETS):
        if peer.same_bucket(b):
            continue
        for writer, end in store.retired.bucket(b).items():
            theirs = peer.mark(writer)
            if theirs is not None and theirs < end:
                behind.append((writer, theirs, end))
    return behind


def cut(
    store: Store, config: Config, behind: Iterable[Lack], until_wall: int | None = None
) -> tuple[tuple[WriterDelta, ...], bool]:
    """For each (writer, base, mine), the entries we hold with base < ts <= mine, in ts
    order, cut at the byte and entry budgets (and before entries written after
    `until_wall`, if given), and whether it was cut. Writers come in the caller's (random)
    order so that no writer starves when every message is cut (R9)."""
    budget = config.delta_budget_bytes
    room = config.max_entries_per_message
    deltas = []
    cut = False
    for origin, base, mine in behind:
        budget -= len(origin) + 64  # the writer's header: origin, base, upto
        taken: list[Entry] = []
        cut = budget <= 0
        young = False
        for entry in store.newer_than(origin, base):
            if entry.stamp > mine:
                break  # held, but not yet covered by our own watermark
            if until_wall is not None and entry.wall > until_wall:
                young = True
                break
            size = entry_size(entry)
            if size > budget or room == 0:
                cut = True
                break
            budget -= size
            room -= 1
            taken.append(entry)
        if cut and not taken:
            break
        if not taken and young:
            continue
        whole = not (cut or young)
        upto = mine if whole else taken[-1].ts
        final = whole and origin in store.retired
        deltas.append(WriterDelta(origin, base, upto, tuple(taken), final))
        if cut:
            break
    return tuple(deltas), cut


def news_rounds(members: int) -> int:
    """How many rounds a write counts as news, pushed to peers whose digest we do not
    know: twice the rounds push gossip needs to reach `members` nodes (log2 N + ln N,
    Pittel), which leaves room for lost messages and the slowest nodes. (Counting dead
    members too, as the caller does, only lengthens it a little.)"""
    return math.ceil(2 * (math.log2(members) + math.log(members))) if members > 1 else 1


def guess(
    store: Store, config: Config, members: int, recent: Iterable[Mapping[str, Timestamp]], now_ms: int
) -> dict[str, Timestamp]:
    """What a peer whose digest we do not know probably holds: not what one of the
    `recent` digests we heard lacks and, with eager push off, not the news (what was
    written in the last few rounds, see news_rounds; `members` counts the cluster). So
    without eager push news goes to every peer we pick, as in rumor mongering; with it,
    the push has already carried the news and the exchange only repairs. (Its retired set
    is taken to be ours: nothing retired is sent on a guess.)"""
    guessed = dict(store.watermarks)
    if not config.eager_push:
        rounds = news_rounds(members)
        news = Timestamp(now_ms - int(rounds * config.gossip_interval * 1000), 0)
        # From the writer's last write before the news, so that a peer holding all that
        # came before takes the delta (R10).
        guessed = {w: store.point_before(w, min(mark, news)) for w, mark in guessed.items()}
    for digest in recent:
        for writer, mark in guessed.items():
            theirs = digest.get(writer, ZERO)
            if theirs < mark:
                guessed[writer] = theirs
    return guessed
