"""What a node lets go of: deletes every member holds past, collected (R7a); and writers
of ended lives, retired once their watermark stands still, so that digests track live
nodes, not history (R20), and forgotten long after, once nothing of them can come back
(R18). Whether a writer's life has ended is the protocol's to say (`Ended`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Summary
from gossip.stability import Stability
from gossip.stats import Stats
from gossip.store import Store

# Rounds an ended writer's watermark must stay still here before we retire it: a little
# slack for the last of it still on its way, since taking it back costs a message.
SETTLE_ROUNDS = 2

Ended = Callable[[str, bool], bool]  # (writer, for good?) -> whether its life is over


class Retirement:
    def __init__(self, config: Config, store: Store, stats: Stats) -> None:
        self.config = config
        self._store = store
        self.stats = stats
        self.quiet: dict[str, tuple[Timestamp, int]] = {}  # ended writers: mark, rounds unmoved
        self.retired_at: dict[str, int] = {}  # retired writers: since when (our clock)

    def clear(self) -> None:
        self.quiet.clear()
        self.retired_at.clear()

    def collect(self, now_ms: int, members: Sequence[MemberInfo], stability: Stability) -> None:
        """Drop the ripe tombstones every member holds past, by its own summaries (R7a)."""
        store = self._store
        if not store.has_ripe(now_ms):
            return

        def stable(writer: str) -> Timestamp:
            mine = store.coverage(writer)
            return min(mine, stability.coverage(members, writer)) if members else mine

        self.stats.collected += store.collect(now_ms, stable)

    def retire(self, writer: str, upto: Timestamp) -> None:
        self._store.retire(writer, upto)
        self.quiet.pop(writer, None)
        self.stats.retired += 1

    def settle(self, ended: Ended, judging: bool) -> None:
        """Move ended writers whose watermark has stood still for SETTLE_ROUNDS rounds from
        the digest to the retired set (not while catching up: then we retire what our
        source has retired). Retiring promises nothing about peers, so no member is
        waited for: any peer that holds less is sent the rest."""
        store = self._store
        if judging:
            for writer, mark in list(store.watermarks.items()):
                if not ended(writer, False):
                    continue
                seen, rounds = self.quiet.get(writer, (mark, -1))
                if seen != mark:
                    rounds = -1
                if rounds + 1 >= SETTLE_ROUNDS:
                    self.retire(writer, mark)
                else:
                    self.quiet[writer] = (mark, rounds + 1)
        for writer in [w for w in self.quiet if w not in store.watermarks]:
            del self.quiet[writer]

    def forget(
        self, now_ms: int, cluster_ms: int, ended: Ended, members: Sequence[MemberInfo], stability: Stability
    ) -> None:
        """A retired writer none of whose entries is left here is forgotten once its life
        has ended for good, its last write is twice reap_after (and max_offset) old by the
        cluster's clocks (`cluster_ms`: a node whose clock runs ahead would forget too soon,
        and be judged by nodes that still remember, R7c), we retired it reap_after ago
        (time to hear of any more of it, such as writes our clock refused), and every
        member holds it to its end or has forgotten it: no member can bring part of it
        back, and a node that could is one the cluster forgot, judged by that (R18)."""
        store = self._store
        reap_ms = self.config.reap_after * 1000
        forget_ms = 2 * reap_ms + self.config.max_offset_ms
        for writer in [w for w in self.retired_at if w not in store.retired]:
            del self.retired_at[writer]  # taken back into the digest
        for writer, end in list(store.retired.items()):
            since = self.retired_at.setdefault(writer, now_ms)
            if (now_ms - since > reap_ms and cluster_ms - end.wall > forget_ms
                    and ended(writer, True) and not store.holds_any(writer)
                    and stability.all_past(members, writer, end)):
                store.forget_writer(writer)
                del self.retired_at[writer]

    def align(self, message: Summary) -> None:
        """Retired writers a peer lists: one we hold exactly to that end, we retire too,
        so that our retired sets come to agree; one of which it holds more than we
        retired, we take back into the digest, to receive the rest (R20)."""
        store = self._store
        for writer, end in message.retired.items():
            if store.watermarks.get(writer) == end:
                self.retire(writer, end)
            elif store.retired.get(writer, end) < end:
                store.unretire(writer)
        for writer, theirs in message.digest.items():
            if store.retired.get(writer, theirs) < theirs:
                store.unretire(writer)
