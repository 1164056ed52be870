"""A node's Prometheus metrics: read from the counters the node keeps anyway
(SharedState.stats(), the protocol's counters, the traffic's and the peer log's) when
scraped, so the paths that feed them gain nothing. One registry per node: several nodes may
run in one process. The replication lag histogram follows the store's merges.
GET /metrics (node.web.metrics_api) serves it; the rendering (node.monitoring.prometheus_text,
with prometheus_client) is loaded on the first scrape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gossip.store import WRITER_SEP, Entry
from node.wire.figures import LAG_BUCKETS, Buckets
from node.wire.transport import wall_ms

if TYPE_CHECKING:
    from node.monitoring.prometheus_text import Exposition, Measured


class NodeMetrics:
    def __init__(self, state: Measured) -> None:
        self.state = state
        self.lag = Buckets(LAG_BUCKETS)
        self._own = state.id + WRITER_SEP
        self._exposition: Exposition | None = None
        state.protocol.store.listeners.append(self._merged)

    def _merged(self, entry: Entry) -> None:
        """A peer's write applied here: how long after it was made (its HLC wall time at its
        origin; 0 if the clocks disagree the other way). Our own writes are not counted."""
        if not entry.origin.startswith(self._own):
            self.lag.observe(max(0.0, (wall_ms() - entry.wall) / 1000))

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        if self._exposition is None:
            from node.monitoring.prometheus_text import Exposition

            self._exposition = Exposition(self.state, self.lag)
        return self._exposition.render()
