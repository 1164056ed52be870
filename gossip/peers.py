"""What a node knows of its peers from their summaries: what each holds, its retired set,
the evidence that it is behind us, and what the cluster's summaries tell of collections
and of time. Forgotten at a reset: it was learnt against the state dropped."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from gossip.clock import ZERO, Timestamp
from gossip.messages import Behind, Summary
from gossip.retired import Holdings, RetiredSummary


class PeerBook:
    def __init__(self) -> None:
        self.holdings: dict[str, Holdings] = {}  # by each peer's last summary: digest and retired set
        self.heard_ms: dict[str, int] = {}  # when each of those summaries came
        self.retired: dict[str, RetiredSummary] = {}  # each peer's last retired-set summary
        # The last digests we heard, from any peer: part of our guess at what a peer whose
        # own summary we do not know holds (see deltas.guess).
        self.recent_digests: deque[Mapping[str, Timestamp]] = deque(maxlen=4)
        self.behind: dict[str, Behind] = {}  # peers found behind our collections: told next exchange
        # The newest collection we know was made anywhere, by a peer's word.
        self.collected_seen = ZERO
        # The newest timestamp of another writer's that we have seen (in digests): time as
        # the cluster's clocks tell it, which our own clock, if it runs ahead, cannot push.
        self.cluster_time = ZERO

    def heard(self, message: Summary, own_writer: str) -> None:
        """A peer's summary, before it is judged: its retired set, and what it says of
        collections and of time."""
        self.retired[message.sender.address] = message.retired_sum
        if message.collected > self.collected_seen:
            self.collected_seen = message.collected
        newest = max((ts for w, ts in message.digest.items() if w != own_writer), default=ZERO)
        if newest > self.cluster_time:
            self.cluster_time = newest

    def holds(self, address: str, holdings: Holdings, digest: Mapping[str, Timestamp], now_ms: int) -> None:
        """A peer found current: what it holds, by its summary, heard at `now_ms`."""
        self.holdings[address] = holdings
        self.heard_ms[address] = now_ms
        self.recent_digests.append(digest)

    def is_behind(self, address: str, evidence: Behind) -> None:
        """A peer found behind our collections: the evidence goes with our next exchange,
        and what it holds is of no use until it has reset."""
        self.behind[address] = evidence
        self.holdings.pop(address, None)

    def clear(self) -> None:
        """At a reset (the cluster's time and collections stay known)."""
        self.holdings.clear()
        self.heard_ms.clear()
        self.retired.clear()
        self.recent_digests.clear()
        self.behind.clear()
