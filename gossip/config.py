"""The protocol's settings: one frozen dataclass, each default with its trade-off."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gossip.errors import ConfigError

# Most bytes one member can add to a message: its record in the view plus its digest entry
# (ids and addresses are at most 256 characters; its tags at most 512 bytes, see
# membership.MAX_TAGS_BYTES, and a comma).
MEMBER_WIRE_BYTES = 900 + 513


@dataclass(frozen=True)
class Config:
    # Peers that carry one cluster's gossip; messages from another cluster are refused.
    cluster_id: str = "default"
    # Seconds between anti-entropy rounds: shorter repairs faster, costs more idle CPU and bytes.
    gossip_interval: float = 1.0
    # Peers per round and per eager push: rounds to converge shrink like log_(k+1) N, traffic grows with k.
    fanout: int = 3
    # Each interval is scaled by 1 +- jitter at random so nodes do not fall into lockstep.
    jitter: float = 0.25
    # Push each local write at once (rumor mongering); off leaves spreading to the rounds.
    eager_push: bool = True
    # Remote timestamps more than this ahead of local wall time are refused: tolerates skew,
    # but a bad clock can pin a key this far in the future.
    max_offset: float = 5.0
    # Bytes of entries in one message; a peer far behind catches up over several rounds.
    delta_budget_bytes: int = 512 * 1024
    # Entries in one message, whatever their size.
    max_entries_per_message: int = 10_000
    # Most member records a node accepts in one message (and the push cover lists' length).
    max_members_per_message: int = 1_024
    # Member records each exchange carries (R13): ourselves, news (joins, restarts, leaves,
    # address changes), then a random sample. Bytes per message stay flat in N; each
    # member's heartbeat is seen less often, so the detector expects that (R17). At most
    # max_members_per_message; that value sends the whole view, as before sampling.
    view_size: int = 48
    # Largest HTTP body a node accepts (413 above); must hold a full delta plus digests.
    max_body_bytes: int = 2 * 1024 * 1024
    # Longest key, in UTF-8 bytes.
    max_key_bytes: int = 256
    # Largest value, as compact JSON bytes.
    max_value_bytes: int = 64 * 1024
    # Deepest nesting of arrays and objects inside a value.
    max_value_depth: int = 32
    # Seconds to wait for a peer's answer before the exchange counts as failed.
    request_timeout: float = 2.0
    # Suspicion (phi accrual) at which a silent member is shown as suspect; still a target.
    phi_suspect: float = 5.0
    # Phi at which it is declared dead and leaves the fanout (Cassandra and chitchat use 8):
    # lower detects crashes sooner, and mistakes a paused node for a dead one more often.
    # At interval I a crash is detected after about phi_dead / log10(e) * I = 18 I.
    phi_dead: float = 8.0
    # Direct probes (R23, SWIM with Lifeguard): seconds between probes of one member each,
    # round-robin; 0 turns probing off and leaves detection to phi (R17). With probes a crash is
    # seen dead in seconds at any size. Set it alike on every node: a node that does not
    # probe does not answer probes either, and would be taken for dead.
    probe_interval: float = 0.0
    # Seconds to wait for a probe's direct answer before asking others to probe (under
    # probe_interval: the indirect probes must fit in the rest of the interval).
    probe_timeout: float = 0.5
    # Members asked to probe indirectly when the direct probe goes unanswered: more
    # survives more lossy paths, each costs a few small messages.
    indirect_probes: int = 3
    # A suspicion's shortest timeout is suspicion_mult x log10(N) x probe_interval (at least
    # one log10 step): the time a suspected member has to refute it. Lower detects sooner and
    # gives a slow member's refutation less time.
    suspicion_mult: float = 1.0
    # A suspicion starts at suspicion_max_mult times that shortest timeout and falls to it as
    # independent confirmations arrive (Lifeguard).
    suspicion_max_mult: float = 3.0
    # Confirmations (other members that suspect it) that bring a suspicion to its shortest timeout.
    suspicion_confirmations: int = 2
    # Each suspect / alive / dead note is passed on retransmit_mult x log10(N + 1) times
    # (rounded up) by every node that hears it: higher reaches more nodes despite loss.
    retransmit_mult: int = 4
    # Heartbeat intervals remembered per member by the detector.
    detector_window: int = 100
    # Chance per round of also gossiping with one dead member, so a recovered node rejoins.
    dead_probe_chance: float = 0.2
    # Seconds a member that is dead (or has left) is remembered; a dead one is forgotten then
    # only by a node that sees most of the cluster alive. Until then it holds tombstone
    # collection back; forgotten, and back with its old state, it is reset (its writes nobody
    # else holds are lost): the longest outage a node survives with its state.
    reap_after: float = 86_400.0
    # Seconds past its time (the delete, or the expiry) before a tombstone or expired entry is
    # dropped, which also waits until every member holds it: a margin for messages in flight
    # and snapshots restored. Expired values are kept that long too: shorten it if you write
    # many short-lived keys.
    tombstone_grace: float = 86_400.0
    # Seconds a signed message stays acceptable (clock skew between nodes must fit in it);
    # its nonce is remembered that long to refuse replays.
    replay_window: float = 30.0

    def __post_init__(self) -> None:
        if not self.cluster_id or len(self.cluster_id) > 128:
            raise ConfigError("cluster_id", "must be 1 to 128 characters")
        positive = (
            "gossip_interval", "fanout", "max_offset", "delta_budget_bytes",
            "max_entries_per_message", "max_members_per_message", "view_size", "max_body_bytes",
            "max_key_bytes", "max_value_bytes", "max_value_depth", "request_timeout", "replay_window",
            "phi_suspect", "phi_dead", "detector_window", "reap_after", "tombstone_grace",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(name, f"must be a positive number, got {value!r}")
        if not isinstance(self.view_size, int) or self.view_size < 2:
            raise ConfigError("view_size", f"must be a whole number of at least 2 (ourselves and one other), "
                              f"got {self.view_size!r}")
        self._check_probes()
        if self.phi_suspect > self.phi_dead:
            raise ConfigError("phi_suspect", "must not exceed phi_dead")
        if not 0 <= self.dead_probe_chance <= 1:
            raise ConfigError("dead_probe_chance", f"must be in [0, 1], got {self.dead_probe_chance!r}")
        if not 0 <= self.jitter < 1:
            raise ConfigError("jitter", f"must be in [0, 1), got {self.jitter!r}")
        if self.max_value_bytes + self.max_key_bytes + 128 > self.delta_budget_bytes:
            raise ConfigError("delta_budget_bytes", "must hold at least one largest entry")
        needed = self.delta_budget_bytes + self.max_members_per_message * MEMBER_WIRE_BYTES
        if needed > self.max_body_bytes:
            raise ConfigError(
                "max_body_bytes",
                f"must hold delta_budget_bytes plus {MEMBER_WIRE_BYTES} bytes for each of "
                f"max_members_per_message members: at least {needed}",
            )

    def _check_probes(self) -> None:
        for name in ("probe_interval", "probe_timeout", "suspicion_mult", "suspicion_max_mult"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(name, f"must be a number >= 0, got {value!r}")
        for name in ("indirect_probes", "suspicion_confirmations", "retransmit_mult"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, f"must be a whole number >= 0, got {value!r}")
        if self.probe_interval == 0:
            return
        if not 0 < self.probe_timeout < self.probe_interval:
            raise ConfigError("probe_timeout", "must be above 0 and below probe_interval, which "
                              "leaves room for the indirect probes")
        if self.suspicion_mult <= 0 or self.suspicion_max_mult < 1:
            raise ConfigError("suspicion_max_mult", "suspicion_mult must be above 0 and "
                              "suspicion_max_mult at least 1")
        if self.retransmit_mult < 1:
            raise ConfigError("retransmit_mult", "must be at least 1 with probes on")

    @property
    def max_offset_ms(self) -> int:
        return int(self.max_offset * 1000)

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def local(cls, **changes: object) -> Config:
        """Several nodes on one machine: fast rounds, since the network is free."""
        return cls(**{"gossip_interval": 0.2, **changes})  # type: ignore[arg-type]

    @classmethod
    def for_tests(cls, **changes: object) -> Config:
        """Quick rounds and short timeouts so tests converge in well under a second."""
        return cls(**{"gossip_interval": 0.05, "request_timeout": 1.0, **changes})  # type: ignore[arg-type]
