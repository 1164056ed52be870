"""A node's metrics in the Prometheus text format, rendered with prometheus_client: the
collector that reads the node's counters when scraped (node.monitoring.metrics loads this
module, and the library with it, on the first scrape, so that a node nobody scrapes does
not carry the library)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gossip.membership import ALIVE, DEAD, LEFT, SUSPECT
from gossip.protocol import GossipProtocol
from gossip.version import __version__
from node.monitoring.health import HealthWatch
from node.server.clockcheck import ClockCheck
from node.server.peerlog import PeerLog
from node.wire.figures import Buckets
from node.wire.traffic import Traffic


class Measured(Protocol):
    """What the metrics read of a node (node.state.SharedState is one)."""

    @property
    def id(self) -> str: ...
    @property
    def protocol(self) -> GossipProtocol: ...  # (its store tells of each merge)
    @property
    def traffic(self) -> Traffic: ...
    @property
    def peers(self) -> PeerLog: ...
    @property
    def health(self) -> HealthWatch: ...
    @property
    def clockcheck(self) -> ClockCheck: ...
    @property
    def write_refusal(self) -> str | None: ...
    def stats(self) -> dict[str, Any]: ...
    def cluster_view(self) -> tuple[tuple[str, ...], Counter[str]]: ...
    def entry_counts(self) -> tuple[int, int]: ...


class Exposition:
    """One node's registry: `render()` answers a scrape, body and content type."""

    def __init__(self, state: Measured, lag: Buckets) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(state, lag))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def content_type() -> str:
    """What a scrape's answer says it is (the exposition format's version is the library's)."""
    return CONTENT_TYPE_LATEST


class _Collector(Collector):
    def __init__(self, state: Measured, lag: Buckets) -> None:
        self.state, self.lag = state, lag

    def collect(self) -> Iterator[Metric]:
        state, traffic, peers = self.state, self.state.traffic, self.state.peers
        stats = state.stats()
        info = GaugeMetricFamily(
            "gossip_node_info", "This node's id and version.", labels=["node", "version"]
        )
        info.add_metric([state.id, __version__], 1)
        yield info
        for name, key, doc in COUNTERS:
            yield CounterMetricFamily(name, doc, value=stats[key])
        by_kind = ["kind", "direction"]
        messages = CounterMetricFamily(
            "gossip_messages", "Gossip messages by kind and direction.", labels=by_kind
        )
        sizes = CounterMetricFamily(
            "gossip_message_bytes", "Gossip body bytes by kind and direction.", labels=by_kind
        )
        for (kind, direction), n in sorted(traffic.messages.items()):
            messages.add_metric([kind, direction], n)
            sizes.add_metric([kind, direction], traffic.message_bytes[kind, direction])
        yield from (messages, sizes)
        failures = CounterMetricFamily("gossip_exchange_failures", FAILURES_DOC, labels=["peer", "reason"])
        for (peer, kind), n in sorted(peers.failures.items()):
            failures.add_metric([peer, kind], n)
        refusals = CounterMetricFamily("gossip_refusals", REFUSALS_DOC, labels=["peer", "status", "reason"])
        for (peer, code, reason), n in sorted(peers.refusals.items()):
            refusals.add_metric([peer, str(code), reason], n)
        rejected = CounterMetricFamily(
            "gossip_rejected", "Peers' gossip we refused, by reason.", labels=["reason"]
        )
        for reason, n in sorted(stats["rejected_by_reason"].items()):
            rejected.add_metric([reason], n)
        yield from (failures, refusals, rejected)
        _, statuses = state.cluster_view()
        members = GaugeMetricFamily("gossip_members", "Other members known, by status.", labels=["status"])
        for status in (ALIVE, SUSPECT, DEAD, LEFT):
            members.add_metric([status], statuses.get(status, 0))
        yield members
        if (probes := state.protocol.probes) is not None:
            events = CounterMetricFamily("gossip_probe_events", PROBES_DOC, labels=["event"])
            for event in dataclasses.fields(probes.counters):
                events.add_metric([event.name], getattr(probes.counters, event.name))
            yield events
        live, dead = state.entry_counts()
        verdict = state.health.last
        for name, doc, value in (
            ("gossip_keys", "Live keys held (the project's own included).", live),
            ("gossip_tombstones", "Deleted or expired entries held until collected.", dead),
            ("gossip_catching_up", "1 while the node catches up from a peer.", int(stats["catching_up"])),
            (
                "gossip_healthy",
                "1 when /health answers 200 (last assessed).",
                int(verdict is None or verdict.ok),
            ),
            ("gossip_accepting_writes", "0 while writes get 503.", int(state.write_refusal is None)),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        lag = HistogramMetricFamily("gossip_replication_lag_seconds", LAG_DOC)
        lag.add_metric([], self.lag.cumulative(), self.lag.sum)
        offsets = HistogramMetricFamily("gossip_clock_offset_seconds", OFFSET_DOC, labels=["peer"])
        last = GaugeMetricFamily(
            "gossip_clock_offset_last_seconds", "The latest such estimate.", labels=["peer"]
        )
        for peer, buckets in sorted(traffic.offsets.items()):
            offsets.add_metric([peer], buckets.cumulative(), buckets.sum)
            last.add_metric([peer], traffic.last_offset[peer])
        yield from (lag, offsets, last)
        clock = state.clockcheck.judge()  # (node.server.clockcheck: what writes are judged by)
        if clock.ahead is not None:
            yield GaugeMetricFamily("gossip_clock_ahead_seconds", AHEAD_DOC, value=clock.ahead)
        yield GaugeMetricFamily("gossip_hlc_lead_seconds", HLC_DOC, value=clock.hlc_lead)


COUNTERS = (
    ("gossip_rounds", "rounds", "Gossip rounds started."),
    ("gossip_entries_applied", "entries_applied", "Entries from peers applied here."),
    ("gossip_collected", "collected", "Tombstones and expired entries dropped once every member held them."),
    ("gossip_resets", "resets", "Times our state predated the cluster's collections and was dropped."),
    ("gossip_pushes", "pushes_sent", "Eager pushes of new writes to a peer, delivered or not."),
)
FAILURES_DOC = "Our messages that failed, by peer and reason (refused, timeout, unreachable, bad answer)."
REFUSALS_DOC = "Our messages a peer refused, by peer, HTTP status and the reason it gave."
LAG_DOC = "From a peer's write (its HLC wall time at its origin) to its application here."
OFFSET_DOC = "How far each peer's clock runs ahead of ours (negative: behind), from the time on its answers."
AHEAD_DOC = ("How far our clock runs ahead of the cluster's at most (negative: behind); writes get 503 above "
             "max_offset. Absent with no node of another host measured.")
PROBES_DOC = ("Direct probes (R23), with probing on: probes sent, those that needed others (indirect) or got "
              "no ack (failed), suspicions of us refuted, suspicions run out here (declared_dead), stalls.")
HLC_DOC = "How far our hybrid logical clock runs ahead of our wall clock (it adds to the above for writes)."
